// interpreter.cpp: evaluates IR instruction by instruction; an `if` runs only its taken region.
#include "ir/interpreter.hpp"

#include <string>

#include "ir/eval_op.hpp"

namespace hpo::ir {
namespace {

class Interpreter {
 public:
  Interpreter(const Function& f, const KernelInputs& in) : f_(f), in_(in), values_(f.value_types.size(), 0.0) {}

  std::vector<double> run() {
    region(f_.body);
    std::vector<double> out;
    out.reserve(f_.outputs.size());
    for (ValueId v : f_.outputs) out.push_back(values_[v]);
    return out;
  }

 private:
  static double read(std::span<const double> array, std::int64_t i, const char* what) {
    if (i < 0 || static_cast<std::size_t>(i) >= array.size())
      throw std::out_of_range(std::string(what) + " index " + std::to_string(i) + " is outside its array of " +
                              std::to_string(array.size()));
    return array[static_cast<std::size_t>(i)];
  }

  double load(std::span<const double> array, const Inst& inst, const char* what) {
    auto index = static_cast<std::int64_t>(values_[inst.operands[0]]);
    if (index < 0 || index >= inst.extent)
      throw std::out_of_range(std::string("run-time index ") + std::to_string(index) + " into a " + what +
                              " dimension of size " + std::to_string(inst.extent));
    return read(array, inst.attr + index * inst.attr2, what);
  }

  void region(const Region& r) {
    for (const auto& inst : r.insts) {
      switch (inst.op) {
        case Op::ConstF: values_[inst.results[0]] = inst.number; break;
        case Op::ConstI:
        case Op::ConstB: values_[inst.results[0]] = static_cast<double>(inst.attr); break;
        case Op::Param: values_[inst.results[0]] = read(in_.params, inst.attr, "param"); break;
        case Op::State: values_[inst.results[0]] = read(in_.state, inst.attr, "state"); break;
        case Op::Disc: values_[inst.results[0]] = read(in_.disc, inst.attr, "discrete action"); break;
        case Op::Cont: values_[inst.results[0]] = read(in_.cont, inst.attr, "continuous action"); break;
        case Op::Noise: values_[inst.results[0]] = read(in_.noise, inst.attr, "noise"); break;
        case Op::Bar: values_[inst.results[0]] = read(in_.bar, inst.attr, "seed"); break;
        case Op::Period: values_[inst.results[0]] = static_cast<double>(in_.t); break;
        case Op::LoadParam: values_[inst.results[0]] = load(in_.params, inst, "param"); break;
        case Op::LoadState: values_[inst.results[0]] = load(in_.state, inst, "state"); break;
        case Op::LoadCont: values_[inst.results[0]] = load(in_.cont, inst, "continuous action"); break;
        case Op::LoadNoise: values_[inst.results[0]] = load(in_.noise, inst, "noise"); break;
        case Op::If: {
          const Region& taken = *inst.regions[values_[inst.operands[0]] != 0 ? 0 : 1];
          region(taken);
          for (std::size_t i = 0; i < inst.results.size(); ++i) values_[inst.results[i]] = values_[taken.yields[i]];
          break;
        }
        default: {
          double a = values_[inst.operands[0]];
          double b = inst.operands.size() > 1 ? values_[inst.operands[1]] : 0.0;
          values_[inst.results[0]] = eval_op(inst.op, a, b);
        }
      }
    }
  }

  const Function& f_;
  const KernelInputs& in_;
  std::vector<double> values_;
};

}  // namespace

std::vector<double> interpret(const Function& f, const KernelInputs& inputs) { return Interpreter(f, inputs).run(); }

}  // namespace hpo::ir
