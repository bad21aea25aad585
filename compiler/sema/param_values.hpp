// param_values.hpp: run-time values of a model's params: defaults, then --params FILE.json, then --set.
#pragma once

#include <string>
#include <vector>

#include "sema/sema.hpp"

namespace hpo {

struct ParamValues {
  std::vector<std::vector<double>> values;  // per param, row-major; empty when not given yet
  std::vector<bool> given;                  // per param: from a file, --set or the API, not its default
};

ParamValues default_param_values(const CheckedModel& model);

// A JSON object mapping param names to numbers or nested arrays of the declared shape (a number
// fills a whole array). Unknown names, wrong shapes and non-numbers are errors.
bool load_param_file(const CheckedModel& model, const std::string& path, ParamValues& values, SourceManager& sources,
                     Diagnostics& diags);

// "name=VALUE" where VALUE is a JSON number or array, e.g. holding=2 or mean=[4,5,6].
bool set_param(const CheckedModel& model, const std::string& assignment, ParamValues& values, Diagnostics& diags);

// A default is a formula: every param not given is evaluated again from its default with the
// values given for the params it reads (`param q = 3 * p` follows `--set p=5`). Every state
// initializer that reads no noise is evaluated with these values too. A result that is not finite
// is an error at its expression. False after any error.
bool derive_param_values(const CheckedModel& model, ParamValues& values, SourceManager& sources, Diagnostics& diags);

// Defaults, then the params file (when not empty), then each --set, then derive_param_values.
bool resolve_param_values(const CheckedModel& model, const std::string& params_file, const std::vector<std::string>& sets,
                          ParamValues& values, SourceManager& sources, Diagnostics& diags);

// Errors for every param that has neither a default nor a given value.
bool require_all_params(const CheckedModel& model, const ParamValues& values, Diagnostics& diags);

}  // namespace hpo
