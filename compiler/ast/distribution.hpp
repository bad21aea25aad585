// distribution.hpp: the distributions a noise declaration may draw from.
#pragma once

namespace hpo {

enum class Distribution { Normal, Uniform, Poisson, Bernoulli, Categorical };
const char* spelling(Distribution d);

}  // namespace hpo
