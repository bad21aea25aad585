// split.cpp: activity (what each value depends on) and the class of every branch and non-smooth
// operation; the jumps in threshold form go to reformulate.cpp.
#include "analysis/split.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "analysis/reformulate.hpp"

namespace hpo::analysis {

using ir::Inst;
using ir::Op;
using ir::Region;
using ir::Ty;
using ir::ValueId;

const char* spelling(Class c) {
  switch (c) {
    case Class::Regime: return "regime";
    case Class::Exogenous: return "exogenous";
    case Class::Kink: return "kink";
    case Class::Jump: return "jump";
  }
  return "?";
}

namespace {

enum Bits : std::uint8_t { kParam = 1, kState = 2, kDisc = 4, kCont = 8, kNoise = 16, kPeriod = 32 };

// What a value depends on: kinds of inputs, and which declarations (ids into Analyzer::sources_).
struct Deps {
  std::uint8_t mask = 0;
  std::vector<int> sources;  // sorted, unique
  void merge(const Deps& o) {
    mask |= o.mask;
    std::vector<int> out;
    std::set_union(sources.begin(), sources.end(), o.sources.begin(), o.sources.end(), std::back_inserter(out));
    sources = std::move(out);
  }
};

std::string decl_name(const std::string& element) { return element.substr(0, element.find('[')); }

class Analyzer {
 public:
  Analyzer(ir::Program& p, Diagnostics& diags, const Options& options)
      : p_(p), f_(p.step), diags_(diags), options_(options) {}

  Report run() {
    report_.model = p_.model_name;
    list_discrete();
    deps_.assign(f_.value_types.size(), {});
    def_.assign(f_.value_types.size(), nullptr);
    walk(f_.body);
    if (options_.reformulate) reformulate(p_, jump_sites_, def_, report_);
    for (const auto& [key, index] : finding_index_) {
      Finding& finding = report_.findings[index];
      if (finding.cls == Class::Jump && finding.gates.empty()) {
        diags_.warning(finding.loc, "this " + finding.what + " jumps with " + join(finding.depends, ", ") +
                                        ", so the pathwise gradient does not see the jump; " + finding.note);
      }
    }
    std::stable_sort(report_.findings.begin(), report_.findings.end(), [](const Finding& a, const Finding& b) {
      return std::tie(a.loc.file, a.loc.line, a.loc.column) < std::tie(b.loc.file, b.loc.line, b.loc.column);
    });
    return std::move(report_);
  }

 private:
  static std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string s;
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
    return s;
  }

  void list_discrete() {
    std::vector<std::pair<std::string, std::pair<std::size_t, std::int64_t>>> groups;
    for (std::size_t i = 0; i < p_.layout.disc.size(); ++i) {
      std::string name = decl_name(p_.layout.disc[i]);
      if (!groups.empty() && groups.back().first == name) ++groups.back().second.first;
      else groups.push_back({name, {1, p_.layout.disc_choices[i]}});
    }
    for (const auto& [name, info] : groups) {
      report_.discrete.push_back(name + (info.first > 1 ? "[" + std::to_string(info.first) + "]" : "") + " : choice(" +
                                 std::to_string(info.second) + ")");
    }
  }

  int source(std::uint8_t kind, const std::string& element) {
    static const char* kKind[] = {"", "param", "state", "", "discrete action", "", "", "", "continuous action"};
    return source_id(decl_name(element) + " (" + (kind == kNoise ? "noise" : kKind[kind]) + ")");
  }

  int source_id(const std::string& label) {
    auto it = source_ids_.find(label);
    if (it != source_ids_.end()) return it->second;
    int id = static_cast<int>(source_labels_.size());
    source_labels_.push_back(label);
    source_ids_[label] = id;
    return id;
  }

  Deps leaf_deps(Op op, std::int64_t attr) {
    const auto& l = p_.layout;
    auto name = [&](const std::vector<std::string>& names) { return names.at(static_cast<std::size_t>(attr)); };
    switch (op) {
      case Op::Param: case Op::LoadParam: return {kParam, {source(kParam, name(l.params))}};
      case Op::State: case Op::LoadState: return {kState, {source(kState, name(l.state))}};
      case Op::Disc: return {kDisc, {source(kDisc, name(l.disc))}};
      case Op::Cont: case Op::LoadCont: return {kCont, {source(kCont, name(l.cont))}};
      case Op::Noise: case Op::LoadNoise: return {kNoise, {source(kNoise, name(l.noise))}};
      // Known for the whole step and the same for every sample: a branch on it is exogenous.
      case Op::Period: return {kPeriod, {source_id("period() (step index)")}};
      default: return {};
    }
  }

  Finding& record(Class cls, const std::string& what, SourceLoc loc, const Deps& deps) {
    auto key = std::make_tuple(static_cast<int>(cls), what, loc.file, loc.line, loc.column);
    auto it = finding_index_.find(key);
    if (it == finding_index_.end()) {
      it = finding_index_.emplace(key, report_.findings.size()).first;
      report_.findings.push_back(Finding{cls, what, loc, 0, {}, {}, {}});
    }
    Finding& f = report_.findings[it->second];
    ++f.instances;
    std::set<std::string> names(f.depends.begin(), f.depends.end());
    for (int s : deps.sources) names.insert(source_labels_[static_cast<std::size_t>(s)]);
    f.depends.assign(names.begin(), names.end());
    return f;
  }

  // The threshold form of a jump condition, if it is one continuous action against a constant.
  std::optional<Threshold> threshold(ValueId cond) const {
    const Inst* cmp = def_[cond];
    if (!cmp || (cmp->op != Op::Lt && cmp->op != Op::Le && cmp->op != Op::Gt && cmp->op != Op::Ge)) return std::nullopt;
    const Inst* a = def_[cmp->operands[0]];
    const Inst* b = def_[cmp->operands[1]];
    if (!a || !b) return std::nullopt;
    bool greater = cmp->op == Op::Gt || cmp->op == Op::Ge;
    if (a->op == Op::Cont && b->op == Op::ConstF) return Threshold{a->attr, greater, b->number};
    if (b->op == Op::Cont && a->op == Op::ConstF) return Threshold{b->attr, !greater, a->number};
    return std::nullopt;
  }

  void jump(const Inst& inst, const std::string& what, ValueId cond, const Deps& deps) {
    Finding& finding = record(Class::Jump, what, inst.loc, deps);
    auto t = threshold(cond);
    if (!t) {
      // A discrete action would let the policy choose what the state decides: not the fix for that.
      if (deps.mask & kState)
        finding.note = "hpoc cannot reformulate it (the condition depends on state, which the policy does not choose); "
                       "where the model allows it, write the jump's expected effect, smooth in the state (e.g. "
                       "cost += sigmoid(k * (x - c)) * C rather than cost += C * (x > c)); see 'Jumps and "
                       "reformulation' in docs/language.md";
      else
        finding.note = "hpoc cannot reformulate it (the condition is not one continuous action compared with a "
                       "constant); to make it hybrid, add a discrete action (action g : choice(2)) that selects the "
                       "branch and use it in the condition";
      return;
    }
    finding.note = "it compares one continuous action with a constant, which hpoc rewrites unless --no-reformulate is given";
    jump_sites_.push_back({cond, *t, static_cast<std::size_t>(&finding - report_.findings.data())});
  }

  void walk(const Region& r) {
    for (const Inst& inst : r.insts) {
      for (ValueId v : inst.results) def_[v] = &inst;
      if (inst.op == Op::If) {
        for (const auto& region : inst.regions) walk(*region);
        const Deps& c = deps_[inst.operands[0]];
        // An if without a source location is the compiler's own (the clamp of a period() index),
        // no branch of the model.
        if (inst.loc.valid()) {
          if (c.mask & (kState | kCont)) jump(inst, "if", inst.operands[0], c);
          else if (c.mask & kDisc) record(Class::Regime, "if", inst.loc, c);
          else if (c.mask) record(Class::Exogenous, "if", inst.loc, c);
        }
        for (std::size_t i = 0; i < inst.results.size(); ++i) {
          Deps d = c;
          for (const auto& region : inst.regions) d.merge(deps_[region->yields[i]]);
          deps_[inst.results[i]] = std::move(d);
        }
        continue;
      }
      ValueId v = inst.results[0];
      switch (inst.op) {
        case Op::Param: case Op::State: case Op::Disc: case Op::Cont: case Op::Noise: case Op::Period:
          deps_[v] = leaf_deps(inst.op, inst.attr);
          break;
        case Op::LoadParam: case Op::LoadState: case Op::LoadCont: case Op::LoadNoise: {
          Deps d = leaf_deps(inst.op, inst.attr);
          const Deps& index = deps_[inst.operands[0]];
          d.merge(index);
          if (index.mask & kDisc) record(Class::Regime, "index", inst.loc, index);
          else if (index.mask) record(Class::Exogenous, "index", inst.loc, index);
          deps_[v] = std::move(d);
          break;
        }
        default: {
          Deps d;
          for (ValueId a : inst.operands) d.merge(deps_[a]);
          bool continuous = (d.mask & (kState | kCont)) != 0;
          if (continuous && (inst.op == Op::Relu || inst.op == Op::Max || inst.op == Op::Min || inst.op == Op::Abs))
            record(Class::Kink, ir::spelling(inst.op), inst.loc, d);
          if (continuous && inst.op == Op::ToReal && f_.value_types[inst.operands[0]] == Ty::I1)
            jump(inst, "indicator", inst.operands[0], d);
          deps_[v] = std::move(d);
        }
      }
    }
  }

  ir::Program& p_;
  ir::Function& f_;
  Diagnostics& diags_;
  Options options_;
  Report report_;
  std::vector<Deps> deps_;
  std::vector<const Inst*> def_;
  std::vector<std::string> source_labels_;
  std::map<std::string, int> source_ids_;
  std::map<std::tuple<int, std::string, FileId, std::uint32_t, std::uint32_t>, std::size_t> finding_index_;
  std::vector<JumpSite> jump_sites_;
};

std::string at(SourceLoc loc) { return "@" + std::to_string(loc.line) + ":" + std::to_string(loc.column); }

}  // namespace

Report analyze(ir::Program& program, Diagnostics& diags, const Options& options) {
  return Analyzer(program, diags, options).run();
}

std::string print_split(const Report& r) {
  std::ostringstream out;
  out << "model " << r.model << '\n';
  for (const auto& d : r.discrete) out << "discrete " << d << '\n';
  for (const auto& g : r.generated) out << "generated " << g << '\n';
  for (const auto& f : r.findings) {
    out << spelling(f.cls) << ' ' << f.what << ' ' << at(f.loc) << " x" << f.instances << " on ";
    for (std::size_t i = 0; i < f.depends.size(); ++i) out << (i ? ", " : "") << f.depends[i];
    if (f.cls == Class::Jump) {
      if (!f.gates.empty()) {
        out << "; reformulated with ";
        for (std::size_t i = 0; i < f.gates.size(); ++i) out << (i ? ", " : "") << f.gates[i];
      } else {
        out << "; not reformulated";
      }
    }
    out << '\n';
  }
  return out.str();
}

std::string print_report(const Report& r, const SourceManager& sources) {
  std::ostringstream out;
  out << "Model " << r.model << ": the smooth/discrete split of its step\n\n";
  out << "Discrete actions (each value selects a regime):\n";
  if (r.discrete.empty()) out << "  none\n";
  for (const auto& d : r.discrete) out << "  " << d << '\n';
  static const std::pair<Class, const char*> kSections[] = {
      {Class::Regime, "Regimes: branches and indices chosen by discrete actions (only the taken branch is evaluated and "
                      "differentiated; the choice gets a score-function term)"},
      {Class::Exogenous, "Exogenous branches: decided by noise or params alone (pathwise through the taken branch)"},
      {Class::Kink, "Kinks: continuous, differentiable almost everywhere (pathwise is unbiased)"},
      {Class::Jump, "Jumps: values that jump with a continuous action or state (pathwise alone is biased)"},
  };
  for (const auto& [cls, title] : kSections) {
    out << '\n' << title << ":\n";
    bool any = false;
    for (const auto& f : r.findings) {
      if (f.cls != cls) continue;
      any = true;
      const SourceFile& file = sources.file(f.loc.file);
      std::string line(file.line_text(f.loc.line));
      line.erase(0, line.find_first_not_of(" \t"));
      out << "  " << file.path << ':' << f.loc.line << ':' << f.loc.column << "  " << f.what;
      if (f.instances > 1) out << " (" << f.instances << " instances after unrolling)";
      out << "\n      " << line << "\n      depends on: ";
      for (std::size_t i = 0; i < f.depends.size(); ++i) out << (i ? ", " : "") << f.depends[i];
      out << '\n';
      if (cls == Class::Jump) {
        if (!f.gates.empty()) {
          out << "      reformulated: generated discrete action";
          for (std::size_t i = 0; i < f.gates.size(); ++i) out << (i ? ", " : " ") << f.gates[i];
          out << '\n';
        } else {
          out << "      not reformulated: " << f.note << '\n';
        }
      }
    }
    if (!any) out << "  none\n";
  }
  if (!r.generated.empty()) {
    out << "\nGenerated discrete actions (the policy chooses them like the model's own):\n";
    for (const auto& g : r.generated) out << "  " << g << '\n';
  }
  return out.str();
}

}  // namespace hpo::analysis
