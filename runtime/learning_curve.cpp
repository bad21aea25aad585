// learning_curve.cpp: the learning curve (train and dev cost per iteration) as a standalone SVG.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "runtime/atomic_file.hpp"
#include "runtime/trainer_state.hpp"

namespace hpo::runtime {

namespace {

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double raw = (hi - lo) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push_back(v);
  return out;
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

void write_learning_curve_svg(const std::vector<IterationStats>& history, const std::string& title,
                              const std::string& path) {
  constexpr double W = 760, H = 440, left = 80, right = 20, top = 40, bottom = 60;
  double x_max = 1, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : history) {
    x_max = std::max(x_max, double(s.iteration));
    for (double v : {s.train_cost, s.dev_cost})
      if (std::isfinite(v)) y_lo = std::min(y_lo, v), y_hi = std::max(y_hi, v);
  }
  if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
  if (y_hi - y_lo < 1e-12 * std::max(1.0, std::abs(y_hi))) y_lo -= 0.5, y_hi += 0.5;
  const double pad = 0.05 * (y_hi - y_lo);
  y_lo -= pad;
  y_hi += pad;
  auto px = [&](double x) { return left + (W - left - right) * x / x_max; };
  auto py = [&](double y) { return top + (H - top - bottom) * (1 - (y - y_lo) / (y_hi - y_lo)); };

  std::ostringstream svg;
  svg.precision(6);
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(title)
      << "</text>\n";
  for (double y : ticks(y_lo, y_hi))
    svg << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
        << "\" stroke=\"#e4e4e4\"/><text x=\"" << left - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">" << y
        << "</text>\n";
  for (double x : ticks(0, x_max))
    svg << "<line x1=\"" << px(x) << "\" x2=\"" << px(x) << "\" y1=\"" << top << "\" y2=\"" << H - bottom
        << "\" stroke=\"#f0f0f0\"/><text x=\"" << px(x) << "\" y=\"" << H - bottom + 18
        << "\" text-anchor=\"middle\">" << x << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\""
      << H - top - bottom << "\" fill=\"none\" stroke=\"#444\"/>\n"
      << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">iteration</text>\n"
      << "<text transform=\"translate(18," << (top + H - bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">cost per episode</text>\n";
  auto polyline = [&](auto value, const char* color, double width) {
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"" << width << "\" points=\"";
    for (const auto& s : history)
      if (std::isfinite(value(s))) svg << px(double(s.iteration)) << ',' << py(value(s)) << ' ';
    svg << "\"/>\n";
  };
  polyline([](const IterationStats& s) { return s.train_cost; }, "#8fb8de", 1.2);
  polyline([](const IterationStats& s) { return s.dev_cost; }, "#d9541e", 2.0);
  svg << "<g transform=\"translate(" << W - right - 150 << "," << top + 12 << ")\">"
      << "<line x1=\"0\" x2=\"24\" y1=\"0\" y2=\"0\" stroke=\"#8fb8de\" stroke-width=\"2\"/>"
      << "<text x=\"30\" y=\"4\">train (batch)</text>"
      << "<line x1=\"0\" x2=\"24\" y1=\"18\" y2=\"18\" stroke=\"#d9541e\" stroke-width=\"2\"/>"
      << "<text x=\"30\" y=\"22\">dev</text></g>\n</svg>\n";

  write_file_atomically(path, svg.str(), "learning curve");
}

}  // namespace hpo::runtime
