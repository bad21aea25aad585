# torch_reference.py: one hpoc training iteration (--algo hpo) written in PyTorch, to time hpoc against it.
"""A PyTorch (CPU, float32) reference of one iteration of hpoc's HPO on the same models and policy.

    /usr/bin/python3 bench/torch_reference.py --problem inventory --size 4 --mode hpo-batch-mean --json
    /usr/bin/python3 bench/torch_reference.py --problem lqr --size 8 --mode hpo

One iteration does what hpoc's Trainer::iterate does (runtime/trainer.cpp, runtime/estimators.cpp):
roll out `batch` episodes keeping the autograd graph through policy and simulator, backpropagate the
HPO surrogate (pathwise cost + score function with the cross term + entropy bonus), clip per head,
take an Adam step, merge the observations into the normalizer: hpoc's `--advantage batch-mean`
(`--mode hpo-batch-mean`). `--mode hpo`, the structure of hpoc's default, adds the value network,
GAE weights and PPO-clipped epochs on the discrete head (timed without the KL stop on both sides'
behalf: its loss weights are the earlier preset's, so where it stops would not match). Not part of the
timed iteration: the normalizer's warm-up batch (once, before hpoc's first iteration), dev
evaluations, and the second backward pass hpoc adds on dev-evaluation iterations to measure the
cross term (measure_cross_term).

BLAS: torch here calls the system libblas.so.3, OpenBLAS; the kernel in use is printed. The
environment pins it to the Haswell kernel (OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE). Measured
on this machine (AMD EPYC, 2 cores, OpenBLAS 0.3.21), `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`
lets OpenBLAS pick its Cooperlake (AVX-512) kernel: SGEMM 1.8x as fast on one thread, products as
accurate against float64, iterations 20-30% faster at --hidden 512,512, within noise at 64,64.
This script leaves the environment as it finds it.
"""
import argparse
import ctypes
import json
import math
import sys
import time

try:
    import torch
except ImportError:  # --help still works; main() explains what to install
    torch = None

PROBLEMS = ("inventory", "lqr")
MODES = ("hpo-batch-mean", "hpo")


class Inventory:
    """examples/inventory.hpo: STORES stores, lead time 2, lost sales, Poisson demand, horizon 50."""

    LEAD, horizon, discount = 2, 50, 1.0
    holding, penalty, fixed_cost, unit_cost = 1.0, 9.0, 10.0, 2.0

    def __init__(self, stores):
        self.stores = stores
        self.mean_demand = torch.tensor([4.0 + s % 3 for s in range(stores)])
        self.obs_size = stores * (1 + self.LEAD)        # observe on_hand, pipeline
        self.components, self.choices = stores, 2       # order[STORES] : choice(2)
        self.cont = stores                              # qty[STORES] in [0, 30]

    def reset(self, batch):
        return (torch.full((batch, self.stores), 5.0), torch.zeros(batch, self.stores, self.LEAD))

    def observe(self, state):
        on_hand, pipeline = state
        return torch.cat([on_hand, pipeline.flatten(1)], 1)   # pipeline[s, l] row-major, as hpoc lays it out

    def squash(self, raw):
        return 30.0 * torch.sigmoid(raw)

    def step(self, state, disc, qty):
        on_hand, pipeline = state
        order = disc.to(qty.dtype)                      # 1 where store s orders: the taken branch only
        demand = torch.poisson(self.mean_demand.expand_as(on_hand))
        available = on_hand + pipeline[:, :, 0]         # today's arrival is usable today
        left = torch.relu(available - demand)
        placed = order * qty
        cost = (self.holding * left + self.penalty * torch.relu(demand - available)
                + order * (self.fixed_cost + self.unit_cost * qty)).sum(1)
        return (left, torch.cat([pipeline[:, :, 1:], placed.unsqueeze(2)], 2)), cost


def seeded_normal(*keys):
    """hpoc's seeded_normal (compiler/ast/seeded_random.hpp): SplitMix64 hash of the keys, Box-Muller."""
    mask = (1 << 64) - 1

    def splitmix64(z):
        z = (z + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    h = 0x243F6A8885A308D3
    for key in keys:
        h = splitmix64(h ^ (key & mask))
    u1, u2 = [((bits >> 11) + 0.5) * 2.0 ** -53 for bits in (h, splitmix64(h))]
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


class SwitchedLqr:
    """examples/switched_lqr_paper.hpo with D = size, M = D, K = 2, SEED = 0, horizon 20."""

    horizon, discount, K = 20, 1.0, 2

    def __init__(self, d, seed=0):
        self.d = d
        s = torch.tensor([[seeded_normal(seed, min(i, j), max(i, j)) for j in range(d)] for i in range(d)],
                         dtype=torch.float64)
        self.A = (1.1 * torch.eye(d, dtype=torch.float64) + 0.05 * s / s.abs().max()).float()
        B = torch.zeros(self.K, d, d)                    # mode k: 1.0 on its own group of coordinates, else 0.15
        for k in range(self.K):
            for i in range(d):
                B[k, i, i] = 1.0 if i * self.K // d == k else 0.15
        self.B, self.Q, self.R = B, torch.eye(d), 0.1 * torch.eye(d)
        self.obs_size, self.components, self.choices, self.cont = d, 1, self.K, d

    def reset(self, batch):
        a = 10.0 / math.sqrt(self.d)                     # x0 ~ uniform(-10/sqrt(D), 10/sqrt(D))
        return (2 * a) * torch.rand(batch, self.d) - a

    def observe(self, x):
        return x

    def squash(self, raw):
        return raw                                       # u is unbounded: the raw output itself

    def step(self, x, disc, u):
        # B[mode] @ u written generally (the model's B is a matrix per mode), not as the diagonal it is.
        drive = torch.bmm(self.B[disc[:, 0]], u.unsqueeze(2)).squeeze(2)
        cost = ((x @ self.Q) * x).sum(1) + ((u @ self.R) * u).sum(1)
        return torch.clamp(x @ self.A.T + drive, -100.0, 100.0), cost


class Mlp(torch.nn.Module):
    """runtime/mlp.cpp: tanh layers, Gaussian weights with std gain/sqrt(fan_in), zero biases, and
    hpoc's default linear path from inputs to outputs (no bias, zero at the start)."""

    def __init__(self, inputs, hidden, outputs, output_gain):
        super().__init__()
        sizes, layers = [inputs] + hidden + [outputs], []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            last = i == len(sizes) - 2
            layer = torch.nn.Linear(n_in, n_out)
            with torch.no_grad():
                layer.weight.normal_(0.0, (output_gain if last else math.sqrt(2.0)) / math.sqrt(n_in))
                layer.bias.zero_()
            layers += [layer] if last else [layer, torch.nn.Tanh()]
        self.body = torch.nn.Sequential(*layers)
        self.skip = torch.nn.Linear(inputs, outputs, bias=False)
        torch.nn.init.zeros_(self.skip.weight)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Normalizer:
    """Running mean and variance (Chan's parallel update), frozen while one gradient is computed."""

    def __init__(self, size):
        # Statistics in float64 (a few numbers); applied in float32.
        self.mean, self.var = torch.zeros(size, dtype=torch.float64), torch.ones(size, dtype=torch.float64)
        self.count = 0
        self.refresh()

    def refresh(self):
        self.mean32, self.inv_std32 = self.mean.float(), (self.var + 1e-8).rsqrt().float()

    def apply(self, obs):
        # Differentiable: hpoc backpropagates through it into the states (zero where clipped).
        return ((obs - self.mean32) * self.inv_std32).clamp(-10.0, 10.0)

    def merge(self, obs):
        var, mean = torch.var_mean(obs, 0, unbiased=False)
        n, mean, var = obs.shape[0], mean.double(), var.double()
        total, delta = self.count + n, mean - self.mean
        if self.count == 0:
            self.mean, self.var = mean, var
        else:
            self.mean = self.mean + delta * (n / total)
            self.var = (self.var * self.count + var * n + delta.square() * (self.count * n / total)) / total
        self.count = total
        self.refresh()


class Reference:
    """The trainer's state across iterations: networks, optimizers, normalizer, first-batch scales."""

    def __init__(self, model, args):
        self.model, self.paper = model, args.mode == "hpo"
        self.batch, self.T = args.batch, model.horizon
        logits = model.components * model.choices
        self.disc_net = Mlp(model.obs_size, args.hidden, logits, 0.01)
        # One output per (continuous action, option); the chosen options' outputs reach the simulator.
        self.cont_net = Mlp(model.obs_size, args.hidden, model.cont * logits, 0.1)
        self.value_net = Mlp(model.obs_size + 1, args.hidden, 1, 1.0)
        # One Adam over both heads, as hpoc's (Adam is per coordinate, so only the shared step count
        # matters); the continuous head at 3x the rate, hpoc's default for hpo.
        self.adam = torch.optim.Adam([{"params": self.disc_net.parameters()},
                                      {"params": self.cont_net.parameters(), "lr": 3e-3}], lr=1e-3, eps=1e-5)
        self.value_adam = torch.optim.Adam(self.value_net.parameters(), lr=1e-3, eps=1e-5)
        self.normalizer = Normalizer(model.obs_size)
        self.discounts = model.discount ** torch.arange(self.T, dtype=torch.float32)
        self.iteration, self.cost_scale, self.value_scale = 0, None, 1.0
        with torch.no_grad():                            # hpoc's warm_up: first statistics from one batch
            self.normalizer.merge(torch.cat(self.rollout(values=False)["obs"]))

    def rollout(self, values):
        """One batch; records the graph through policy and simulator when grad mode is on."""
        m, n, k = self.model, self.batch, self.model.choices
        state = m.reset(n)
        out = {key: [] for key in ("obs", "disc", "logp", "entropy", "cost", "value")}
        for t in range(self.T):
            obs = m.observe(state)
            z = self.normalizer.apply(obs)
            logp_all = torch.log_softmax(self.disc_net(z).view(n, m.components, k), 2)  # factorized categorical
            p = logp_all.exp()
            with torch.no_grad():                        # inverse-CDF sampling, as hpoc's rollout draws
                disc = (torch.rand(n, m.components, 1) >= p.cumsum(2)).sum(2).clamp_max(k - 1)
            # Not detached from z: the cross term flows from log pi back through the states.
            out["logp"].append(logp_all.gather(2, disc.unsqueeze(2)).squeeze(2).sum(1))
            out["entropy"].append(-(p * logp_all).sum((1, 2)))
            hot = torch.nn.functional.one_hot(disc, k).flatten(1).to(z.dtype)
            action = m.squash((self.cont_net(z).view(n, m.cont, -1) * hot.unsqueeze(1)).sum(2))
            if values:
                with torch.no_grad():
                    v = self.value_net(torch.cat([z, torch.full((n, 1), t / self.T)], 1))
                    out["value"].append(v.squeeze(1) * self.value_scale)
            state, cost = m.step(state, disc, action)
            out["obs"].append(obs.detach())
            out["disc"].append(disc)
            out["cost"].append(cost)
        return out

    def reverse_discounted(self, x):
        """y_t = x_t + discount * y_{t+1} over [T, B] rows."""
        y, carry = torch.empty_like(x), torch.zeros_like(x[0])
        for t in range(self.T - 1, -1, -1):
            carry = x[t] + self.model.discount * carry
            y[t] = carry
        return y

    def gae(self, costs, values, lam=0.95):
        """GAE(lambda) advantages in cost units and value targets, V_T = 0 (trainer.cpp's gae)."""
        gamma = self.model.discount
        next_values = torch.cat([values[1:], torch.zeros_like(values[:1])])
        delta = costs + gamma * next_values - values
        adv, running = torch.empty_like(costs), torch.zeros_like(costs[0])
        for t in range(self.T - 1, -1, -1):
            running = delta[t] + gamma * lam * running
            adv[t] = running
        return adv, adv + values

    def step_policy(self):
        for net in (self.disc_net, self.cont_net):      # per-group clipping, then one Adam step on both
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        self.adam.step()

    def iterate(self, total_iterations):
        T, n = self.T, self.batch
        progress = self.iteration / total_iterations   # entropy bonus annealed linearly to 0
        entropy_coef = (0.01 if self.paper else 0.03) * (1.0 - progress)
        per_step = 1.0 / (n * T)                         # the loss is the mean cost per step

        traj = self.rollout(values=self.paper)
        costs, logp, entropy = (torch.stack(traj[key]) for key in ("cost", "logp", "entropy"))  # [T, B]
        with torch.no_grad():
            c = costs.detach()
            train_cost = (self.discounts[:, None] * c).sum().item() / n
            g = self.reverse_discounted(c)               # costs-to-go G_t
            if self.cost_scale is None:                  # scales fixed by the first batch
                self.cost_scale = max(abs(train_cost) / T, 1e-12)
                self.value_scale = max(g.square().mean().sqrt().item(), 1e-6)
            if self.paper:                               # normalized GAE advantages for the score function
                adv, targets = self.gae(c, torch.stack(traj["value"]))
                weights = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8) * per_step
            else:                                        # leave-one-out batch mean of G_t as the baseline
                entropy_coef *= self.cost_scale
                baseline = (g.sum(1, keepdim=True) - g) / max(n - 1, 1)
                weights = self.discounts[:, None] * (g - baseline) * per_step

        # The HPO surrogate: its gradient is hpoc's backward_through_trajectory.
        loss = (per_step * (self.discounts[:, None] * costs).sum() + (weights * logp).sum()
                - entropy_coef * per_step * entropy.sum())
        self.adam.zero_grad(set_to_none=False)
        loss.backward()
        self.step_policy()

        obs = torch.cat(traj["obs"])                     # [T * B, obs], rows t-major
        if self.paper:
            disc = torch.cat(traj["disc"])
            tf = (torch.arange(T, dtype=torch.float32) / T).repeat_interleave(n)[:, None]
            self.ppo_epochs(obs, disc, logp.detach().flatten(), adv.flatten(), targets.flatten(), tf, entropy_coef)
        self.normalizer.merge(obs)
        self.iteration += 1
        return train_cost

    def ppo_epochs(self, obs, disc, logp_old, adv, targets, tf, entropy_coef, epochs=4, minibatches=4,
                   clip=0.2, target_kl=0.0, value_coef=0.5):
        """hpoc's PPO epochs: PPO-clipped minibatch steps on the discrete head (states fixed) + value fit."""
        rows, k = obs.shape[0], self.model.choices
        per = -(-rows // minibatches)
        with torch.no_grad():
            z = self.normalizer.apply(obs)               # frozen normalizer: once for all epochs
            scaled_targets = targets / self.value_scale
        for _ in range(epochs):
            kl = torch.zeros(())
            for idx in torch.randperm(rows).split(per):
                zb, a = z[idx], adv[idx]
                a = (a - a.mean()) / (a.std(unbiased=False) + 1e-8)   # per-minibatch normalization
                logp_all = torch.log_softmax(self.disc_net(zb).view(len(idx), -1, k), 2)
                lp = logp_all.gather(2, disc[idx].unsqueeze(2)).squeeze(2).sum(1)
                ratio = torch.exp(lp - logp_old[idx])
                # Costs are minimized: the pessimistic clipped objective is the max.
                surrogate = torch.max(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()
                ent = -(logp_all.exp() * logp_all).sum((1, 2)).mean()
                v = self.value_net(torch.cat([zb, tf[idx]], 1)).squeeze(1)
                loss = surrogate - entropy_coef * ent + value_coef * (v - scaled_targets[idx]).square().mean()
                # set_to_none=False: the continuous head gets zero gradients (hpoc leaves it out of these steps).
                self.adam.zero_grad(set_to_none=False)
                self.value_adam.zero_grad(set_to_none=False)
                loss.backward()
                self.step_policy()
                torch.nn.utils.clip_grad_norm_(self.value_net.parameters(), 5.0)
                self.value_adam.step()
                kl += (logp_old[idx] - lp.detach()).sum()
            if target_kl > 0 and kl.item() / rows > 1.5 * target_kl:       # an early stop on the epoch's mean KL (off when timed)
                break


def keep_freed_memory():
    """Stop glibc malloc from returning freed blocks to the kernel (mmap/munmap, heap trimming).

    Every batch-sized tensor above glibc's mmap threshold is otherwise a fresh mapping, and in this
    VM the page faults on it cost more than the op (tanh(x @ w) at 1024 x 512: 21 ms, 7.4 ms with
    this). PyTorch's CPU tuning guide fixes the same with jemalloc or tcmalloc; hpoc's chunks of 16
    episodes stay below the threshold. --glibc-malloc keeps glibc's defaults.
    """
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def openblas():
    """The OpenBLAS torch has loaded (ctypes handle and path), or (None, what /proc/self/maps shows)."""
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1].lower()})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib, path
        except (OSError, AttributeError):
            continue
    return None, ", ".join(paths) or "no BLAS in /proc/self/maps"


def set_threads(threads, blas_threads, hidden):
    """Splits `threads` cores between OpenBLAS's pthread pool and torch's OpenMP pool; describes BLAS.

    torch.set_num_threads does not reach an OpenBLAS linked as the generic libblas, and both pools
    spin-wait between calls: with both at 2 threads on 2 cores they take each other's cores and an
    iteration is 2-5x slower. So at most `threads` threads spin at once, the main thread included:
    torch gets threads - blas_threads + 1. auto gives OpenBLAS every thread when the hidden layers
    are wide enough for the GEMMs to dominate (measured on 2 cores: hidden 64 is fastest with
    OpenBLAS on 1 thread, hidden 512 with OpenBLAS on 2 and torch on 1), else 1.
    """
    lib, where = openblas()
    if blas_threads == "auto":
        blas_threads = threads if lib is not None and max(hidden) >= 256 else 1
    blas_threads = min(int(blas_threads), threads)
    torch.set_num_threads(threads - blas_threads + 1)
    if lib is None:
        return blas_threads, where
    lib.openblas_set_num_threads(blas_threads)
    return blas_threads, (f"{lib.openblas_get_config().decode()}, kernel {lib.openblas_get_corename().decode()}, "
                          f"{lib.openblas_get_num_threads()} threads ({where})")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--problem", choices=PROBLEMS, default="inventory")
    parser.add_argument("--size", type=int, default=4, help="STORES for inventory, D for lqr (K = 2)")
    parser.add_argument("--batch", type=int, default=1024, help="episodes per iteration")
    parser.add_argument("--hidden", default="64,64", help="hidden layer sizes, comma-separated")
    parser.add_argument("--mode", choices=MODES, default="hpo-batch-mean",
                        help="hpo-batch-mean: hpoc --advantage batch-mean; hpo: the structure of hpoc's default")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=2, help="cores, OpenBLAS's and torch's pools together")
    parser.add_argument("--blas-threads", default="auto", help="of them, OpenBLAS's (see set_threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--glibc-malloc", action="store_true", help="keep glibc's malloc defaults (keep_freed_memory)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args()
    try:
        args.hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        parser.error("--hidden takes comma-separated integers, e.g. 64,64")
    if min(args.size, args.iterations, args.threads, *args.hidden) < 1 or args.batch < 2 or args.warmup < 0:
        parser.error("--size, --iterations, --threads and --hidden must be positive, --batch at least 2")
    if args.blas_threads != "auto" and not (args.blas_threads.isdigit() and int(args.blas_threads) >= 1):
        parser.error("--blas-threads takes auto or a positive integer")
    return args


def main():
    args = parse_args()
    if torch is None:
        print("torch_reference.py: cannot import torch; install python3-torch (Debian) to run the PyTorch "
              f"reference, and run it with that Python (/usr/bin/python3), not {sys.executable}", file=sys.stderr)
        return 2
    malloc = "glibc defaults" if args.glibc_malloc else \
        ("glibc, freed memory kept" if keep_freed_memory() else "glibc defaults (mallopt failed)")
    blas_threads, blas = set_threads(args.threads, args.blas_threads, args.hidden)
    torch.manual_seed(args.seed)
    torch.set_default_dtype(torch.float32)
    # float32 throughout, the simulator included; hpoc's simulator runs in float64 (its policy in float32
    # by default, --precision).
    model = Inventory(args.size) if args.problem == "inventory" else SwitchedLqr(args.size)
    ref = Reference(model, args)
    total = args.warmup + args.iterations
    costs, seconds = [], []
    for i in range(total):
        started = time.perf_counter()
        costs.append(ref.iterate(total))
        if i >= args.warmup:
            seconds.append(time.perf_counter() - started)

    ms, ms_min = 1e3 * sum(seconds) / len(seconds), 1e3 * min(seconds)
    steps = args.batch * model.horizon / (ms / 1e3)
    hidden = ",".join(map(str, args.hidden))
    print(f"{args.problem} size {args.size}, mode {args.mode}, batch {args.batch} x horizon {model.horizon}, "
          f"hidden {hidden}, {args.threads} threads")
    print(f"  {ms:.1f} ms per iteration (min {ms_min:.1f}) over {args.iterations} after {args.warmup} warm-up; "
          f"{steps:,.0f} steps/s")
    print(f"  train cost per episode: {costs[0]:.2f} (iteration 1) -> {costs[-1]:.2f} (iteration {total})")
    print(f"  torch {torch.__version__} ({torch.get_num_threads()} threads), malloc: {malloc}")
    print(f"  BLAS: {blas}")
    if args.json:
        print(json.dumps({"problem": args.problem, "size": args.size, "batch": args.batch, "hidden": hidden,
                          "mode": args.mode, "threads": args.threads, "iterations": args.iterations,
                          "ms_per_iteration": round(ms, 3), "ms_min": round(ms_min, 3),
                          "steps_per_second": round(steps, 1), "first_cost": costs[0], "last_cost": costs[-1],
                          "torch": torch.__version__, "blas": blas, "blas_threads": blas_threads,
                          "torch_threads": torch.get_num_threads(), "malloc": malloc}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
