// simd.hpp: SIMD vectors (GCC vector extensions) as wide as the build's registers, and the
// vectorized exp, log and tanh of the policy networks. Every function works lane by lane, so a
// sample's result does not depend on the lane or the vector it lands in.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// GCC 12 reports the intrinsics' deliberately undefined operands (in Eigen's packet code, once
// inlined) as uninitialized reads; the state at the intrinsics headers' lines decides.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop

namespace hpo::runtime::simd {

#if defined(__AVX512F__)
inline constexpr int kBytes = 64;
inline constexpr int kRegisters = 32;
#elif defined(__AVX__)
inline constexpr int kBytes = 32;
inline constexpr int kRegisters = 16;
#else
inline constexpr int kBytes = 16;
inline constexpr int kRegisters = 16;
#endif

template <class S>
struct Types;
template <>
struct Types<float> {
  typedef float Vec __attribute__((vector_size(kBytes)));
  typedef std::int32_t Int __attribute__((vector_size(kBytes)));
};
template <>
struct Types<double> {
  typedef double Vec __attribute__((vector_size(kBytes)));
  typedef std::int64_t Int __attribute__((vector_size(kBytes)));
};

template <class S>
using Vec = typename Types<S>::Vec;
template <class S>
using Int = typename Types<S>::Int;
template <class S>
inline constexpr int kLanes = kBytes / static_cast<int>(sizeof(S));

template <class S>
inline Vec<S> load(const S* p) {
  Vec<S> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class S>
inline void store(S* p, Vec<S> v) {
  std::memcpy(p, &v, sizeof v);
}
template <class S>
inline Vec<S> broadcast(S x) {
  return Vec<S>{} + x;
}
template <class S>
inline Vec<S> select(Int<S> mask, Vec<S> a, Vec<S> b) {
  return mask ? a : b;
}
template <class S>
inline Vec<S> max(Vec<S> a, Vec<S> b) {
  return a > b ? a : b;
}

// Round to nearest by adding and subtracting 1.5 * 2^mantissa bits (valid for |x| < 2^(bits-1)).
template <class S>
inline Vec<S> round_nearest(Vec<S> x) {
  constexpr S magic = sizeof(S) == 4 ? S(12582912.0) : S(6755399441055744.0);
  return (x + magic) - magic;
}

// e^x, Cephes' range reduction x = n ln 2 + r: a degree-6 polynomial in r for float, a Pade
// approximant for double; the result is 2^n built in the exponent bits. NaN stays NaN.
template <class S>
inline Vec<S> exp(Vec<S> x) {
  using I = Int<S>;
  if constexpr (sizeof(S) == 4) {
    x = x > S(88.3762626647949) ? broadcast<S>(S(88.3762626647949)) : x;
    x = x < S(-87.3365447505531) ? broadcast<S>(S(-87.3365447505531)) : x;
    Vec<S> n = round_nearest<S>(x * S(1.44269504088896341));
    Vec<S> r = x - n * S(0.693359375) - n * S(-2.12194440e-4);
    Vec<S> z = r * r;
    Vec<S> p = broadcast<S>(S(1.9875691500E-4));
    p = p * r + S(1.3981999507E-3);
    p = p * r + S(8.3334519073E-3);
    p = p * r + S(4.1665795894E-2);
    p = p * r + S(1.6666665459E-1);
    p = p * r + S(5.0000001201E-1);
    p = p * z + r + S(1.0);
    I bits = (__builtin_convertvector(n, I) + 127) << 23;
    Vec<S> scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
  } else {
    x = x > S(709.0) ? broadcast<S>(S(709.0)) : x;
    x = x < S(-708.0) ? broadcast<S>(S(-708.0)) : x;
    Vec<S> n = round_nearest<S>(x * S(1.4426950408889634073599));
    Vec<S> r = x - n * S(6.93145751953125E-1) - n * S(1.42860682030941723212E-6);
    Vec<S> z = r * r;
    Vec<S> p = ((S(1.26177193074810590878E-4) * z + S(3.02994407707441961300E-2)) * z + S(9.99999999999999999910E-1)) * r;
    Vec<S> q = ((S(3.00198505138664455042E-6) * z + S(2.52448340349684104192E-3)) * z + S(2.27265548208155028766E-1)) * z +
               S(2.00000000000000000009E0);
    Vec<S> e = S(1.0) + S(2.0) * p / (q - p);
    I bits = (__builtin_convertvector(n, I) + 1023) << 52;
    Vec<S> scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return e * scale;
  }
}

// Natural log for x > 0 (float: Cephes' logf polynomial on the mantissa; double: libm per lane,
// where exactness matters more than speed).
template <class S>
inline Vec<S> log(Vec<S> x) {
  if constexpr (sizeof(S) == 4) {
    using I = Int<S>;
    I bits;
    std::memcpy(&bits, &x, sizeof bits);
    Vec<S> e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, Vec<S>);
    I mantissa_bits = (bits & 0x807fffff) | 0x3f000000;  // the mantissa in [0.5, 1)
    Vec<S> m;
    std::memcpy(&m, &mantissa_bits, sizeof m);
    auto small = m < S(0.707106781186547524);
    e = small ? e - S(1) : e;
    m = small ? m + m - S(1) : m - S(1);
    Vec<S> z = m * m;
    Vec<S> p = broadcast<S>(S(7.0376836292E-2));
    p = p * m + S(-1.1514610310E-1);
    p = p * m + S(1.1676998740E-1);
    p = p * m + S(-1.2420140846E-1);
    p = p * m + S(1.4249322787E-1);
    p = p * m + S(-1.6668057665E-1);
    p = p * m + S(2.0000714765E-1);
    p = p * m + S(-2.4999993993E-1);
    p = p * m + S(3.3333331174E-1);
    Vec<S> y = m * z * p + e * S(-2.12194440e-4) - S(0.5) * z;
    Vec<S> result = m + y + e * S(0.693359375);
    // Outside (0, inf) and for NaN, fall back to libm's answer (-inf, NaN, inf).
    auto odd = ~(x > S(1.17549435e-38)) | (x == S(INFINITY));
    for (int i = 0; i < kLanes<S>; ++i)
      if (odd[i]) result[i] = std::log(x[i]);
    return result;
  } else {
    Vec<S> result;
    for (int i = 0; i < kLanes<S>; ++i) result[i] = std::log(x[i]);
    return result;
  }
}

// tanh. Float: Eigen's rational approximation (a quarter faster than going through exp, within
// 3e-7 of tanh), when Eigen's packet is this vector. Otherwise 1 - 2 / (e^(2a) + 1): exact to a
// few ulps of 1 in absolute terms. Both saturate cleanly.
template <class S>
inline Vec<S> tanh(Vec<S> a) {
  using Packet = typename Eigen::internal::packet_traits<S>::type;
  if constexpr (sizeof(S) == 4 && sizeof(Packet) == sizeof(Vec<S>)) {
    Packet p;
    std::memcpy(&p, &a, sizeof p);
    p = Eigen::internal::ptanh(p);
    std::memcpy(&a, &p, sizeof a);
    return a;
  } else {
    return S(1) - S(2) / (exp<S>(a + a) + S(1));
  }
}

}  // namespace hpo::runtime::simd
