"""Hand-written mutants of minibatch discrimination's node and compiled loops.

mutmut does not mutate decorated functions: the loops in
ganapp/techniques/minibatch_kernel.py are numba-compiled (@_jit, and an @overload for exp),
and the node's forward and backward are static methods of an autograd Function. So each
mutant below changes one thing by hand, in a copy of the tree (tracked files only, in a
temporary folder; the working tree is never touched), and runs the tests that must catch
it. A mutant is killed when a test fails. Prints one line a mutant and the count;
exits 1 if any survives.

    python scripts/hand_mutants_minibatch.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "ganapp/techniques/minibatch_kernel.py"
NODE = "ganapp/techniques/minibatch_discrimination.py"
TRAINING = "ganapp/training.py"
TESTS = ["tests/test_minibatch_fused.py", "tests/test_techniques.py"]
INSIDE_TESTS = ["tests/test_inside.py"]
TRAINING_TESTS = ["tests/test_training.py::test_g_step_holds_d_fixed_and_gives_g_the_gradients_of_a_full_backward",
                  "tests/test_training.py::test_d_trains_again_after_a_g_step_that_failed_inside_d"]

MUTANTS = [  # (file, the text, what replaces it: the first occurrence only[, the tests if not TESTS])
    (KERNEL, "row[i] = abs(a[i] - s[i])", "row[i] = (a[i] - s[i])"),
    (KERNEL, "row[i] += abs(a[i] - s[i])", "row[i] += (a[i] - s[i])"),
    (KERNEL, "for c in range(1, kernel_dim):  # L1 over C", "for c in range(2, kernel_dim):  # L1 over C"),
    (KERNEL, "        h = n // 2\n", "        h = (n - 1) // 2\n"),
    (KERNEL, "for d in range(1, h + 1):\n                row = flat", "for d in range(1, h):\n                row = flat"),
    (KERNEL, "if 2 * d == n:  # i + n/2", "if False:  # i + n/2"),
    (KERNEL, "                        sh[i] += row[i]\n", "                        sh[i] += 0\n"),
    (KERNEL, "others[j, b] = (own[j] + (shifted[j] + shifted[n + j])) / divisor",
     "others[j, b] = (own[j] + shifted[j]) / divisor"),
    (KERNEL, "others[j, b] = (own[j] + (shifted[j] + shifted[n + j])) / divisor",
     "others[j, b] = own[j] + (shifted[j] + shifted[n + j])"),
    (KERNEL, "            own[:] = 0\n            shifted[:] = 0\n            for d in range(1, h + 1):\n                row = flat",
     "            own[:] = 0\n            for d in range(1, h + 1):\n                row = flat"),
    (KERNEL, "ext[c, n + i] = rows[c, i]", "ext[c, n + i] = rows[c, 0]"),
    (KERNEL, "y = y * x + p5", "y = y * x + p4"),
    (KERNEL, "x = x - z * ln2_low", "x = x + z * ln2_low"),
    (KERNEL, "z = np.floor(x * log2e + half)", "z = np.floor(x * log2e)"),
    (KERNEL, "row[j] = y * f32(x0 >= low)", "row[j] = y"),
    (KERNEL, "x = low if x0 < low else x0", "x = x0"),
    (KERNEL, "row[j] = math.exp(-row[j])", "row[j] = math.exp(row[j])"),
    (KERNEL, "g[i] = grad_others[i, b] / divisor", "g[i] = grad_others[i, b]"),
    (KERNEL, "g[n + i] = g[i]", "g[n + i] = 0"),
    (KERNEL, "weight[i] = (g[i] + gs[i]) * row[i]", "weight[i] = g[i] * row[i]"),
    (KERNEL, "weight[i] = (g[i] + gs[i]) * row[i]", "weight[i] = (g[i] + gs[i]) * closeness[b, 0, i]"),
    (KERNEL, "term = np.sign(a[i] - s[i]) * weight[i]", "term = (a[i] - s[i]) * weight[i]"),
    (KERNEL, "                            mine[i] -= term\n", "                            mine[i] += term\n"),
    (KERNEL, "                            sh[i] += term\n", "                            sh[i] -= term\n"),
    (KERNEL, "mine[i] -= np.sign(a[i] - s[i]) * weight[i]", "mine[i] += np.sign(a[i] - s[i]) * weight[i]"),
    (KERNEL, "grad_m[b, c, j] = own[c, j] + (shifted[c, j] + shifted[c, n + j])",
     "grad_m[b, c, j] = own[c, j] + shifted[c, j]"),
    (KERNEL, "            own[:] = 0\n            shifted[:] = 0\n            for d in range(1, h + 1):\n                row, gs",
     "            own[:] = 0\n            for d in range(1, h + 1):\n                row, gs"),
    (KERNEL, "grad_others[j, b] = gj * weight[b]", "grad_others[j, b] = gj * abs(weight[b])"),
    (KERNEL, "grad_weight[b] += gj * others[j, b]", "grad_weight[b] += gj * others[j, b] * 2"),
    (KERNEL, "            grad_weight[b] = 0\n", "            grad_weight[b] = 1\n"),
    # the heatmap's loop (ganapp.inside): caught by the heatmap's own test
    (KERNEL, "row[p] = abs(m_points[b, 0, p] - mj)", "row[p] = m_points[b, 0, p] - mj", INSIDE_TESTS),
    (KERNEL, "for c in range(1, kernel_dim):\n                    mj = m_batch", "for c in range(2, kernel_dim):\n                    mj = m_batch", INSIDE_TESTS),
    (KERNEL, "                total[p] += row[p]\n", "                total[p] = row[p]\n", INSIDE_TESTS),
    (KERNEL, "            total[:] = 0\n            for j in range(n):\n", "            for j in range(n):\n", INSIDE_TESTS),
    (KERNEL, "out[p, b] = total[p]", "out[p, b] = total[p] - 1", INSIDE_TESTS),
    (NODE, "return n - 1 if mean and n > 1 else 1", "return n if mean and n > 1 else 1"),
    (NODE, "return n - 1 if mean and n > 1 else 1", "return n - 1 if mean else 1"),
    (NODE, "return torch.mm(flat_t, features_t).view(tensor.shape[1], tensor.shape[2], features_t.shape[1])",
     "return torch.mm(flat_t, features_t).view(tensor.shape[2], tensor.shape[1], -1).transpose(0, 1).contiguous()"),
    (NODE, "    if loops.usable(m):  # compiled loops on the CPU", "    if not loops.usable(m):  # compiled loops on the CPU"),
    (NODE, "        if loops.usable(m):\n            grad_m = torch", "        if not loops.usable(m):\n            grad_m = torch"),
    (NODE, "    if loops.usable(m):  # compiled loops (minibatch_kernel.py)", "    if False:  # compiled loops (minibatch_kernel.py)"),
    (NODE, "logit += torch.mm(others, weight_t)", "logit += torch.mm(others, weight_t) * 1.5"),
    (NODE, "logit = torch.addmm(output_bias, features, output_weight_t)", "logit = torch.mm(features, output_weight_t)"),
    (NODE, "grad_output_weight = grad.t().mm(features) if need_output_weight",
     "grad_output_weight = grad.t().mm(features) * 2 if need_output_weight"),
    (NODE, "grad_output_bias = grad.sum(0) if need_output_bias", "grad_output_bias = grad.mean(0) if need_output_bias"),
    (NODE, "grad_features = grad.mm(output_weight) if need_features else None",
     "grad_features = torch.zeros_like(features) if need_features else None"),
    (NODE, "own = torch.mm(grad_m_t, flat_t)", "own = torch.mm(grad_m_t, flat_t) * 0"),
    (NODE, "grad_features = own if grad_features is None else grad_features.add_(own)",
     "grad_features = own if grad_features is None else grad_features"),
    (NODE, "    if need_features:\n        own = ", "    if need_tensor:\n        own = "),
    (NODE, "grad_m_t = grad_m.view(-1, features.shape[0]).t()", "grad_m_t = grad_m.view(features.shape[0], -1)"),
    (NODE, "grad_features = grad.mm(output_weight) if need_features else None",
     "grad_features = grad.mm(output_weight) if need_tensor else None"),
    (NODE, "torch.mm(features_t, grad_m_t).view_as(tensor) if need_tensor",
     "torch.mm(features_t, grad_m_t).view(tensor.shape[0], tensor.shape[2], -1).transpose(1, 2) if need_tensor"),
    (NODE, "grad_m_t = _grad_m(m, closeness, grad * weight / divisor)", "grad_m_t = _grad_m(m, closeness, grad * weight)"),
    (NODE, "grad_weight = torch.from_numpy(grad_weight).view_as(weight) if need_weight else None", "grad_weight = None"),
    # D's step's two heads in one node: the gradients' order (historical averaging adds a third)
    (NODE, "return (real[0], fake[0], *fake[1:], *real[1:], None)", "return (real[0], fake[0], *real[1:], *fake[1:], None)"),
    (NODE, "        if grad_fake is not None:\n", "        if True:\n"),
    (NODE, "        ctx.set_materialize_grads(False)", "        pass"),
    (NODE, "fake_logit, fake_arrays = _head_forward(fake_features,", "fake_logit, fake_arrays = _head_forward(real_features,"),
    (NODE, "grad * weight / divisor", "grad * weight.abs() / divisor"),
    (NODE, "grad_weight = torch.mm(grad.t(), others)", "grad_weight = torch.mm(grad.t(), others) * 2"),
    (NODE, "grad_m = _grad_m(m, closeness, grad_others / ctx.divisor)", "grad_m = _grad_m(m, closeness, grad_others)"),
    (NODE, "    return closeness, (others / divisor if divisor != 1 else others)", "    return closeness, others"),
    (NODE, "    return grad_m.neg_()", "    return grad_m"),
    (NODE, "    for c in range(1, m.shape[1]):", "    for c in range(2, m.shape[1]):"),
    (NODE, "torch.sub(m[:, c, :, None], m[:, c, None, :], out=scratch).sign_().mul_(weight)",
     "torch.sub(m[:, c, :, None], m[:, c, None, :], out=scratch).mul_(weight)"),
    (NODE, "weight = (grad[:, :, None] + grad[:, None, :]).mul_(closeness)",
     "weight = (grad[:, :, None] + grad[:, :, None]).mul_(closeness)"),
    # D held fixed during G's step (ganapp.training)
    (TRAINING, "        with _frozen(self._discriminator_parameters):", "        with _frozen([]):", TRAINING_TESTS),
    (TRAINING, "            parameter.requires_grad_(True)", "            parameter.requires_grad_(False)", TRAINING_TESTS),
    (TRAINING, "    try:\n        yield\n    finally:\n", "    yield\n    if True:\n", TRAINING_TESTS),
]


def main() -> int:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="ganapp-mutants-") as folder:
        copy = Path(folder)
        for name in files:
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name).read_bytes())
        originals = {name: (copy / name).read_text() for name in (KERNEL, NODE, TRAINING)}
        for name, old, *_ in MUTANTS:
            if old not in originals[name]:
                print(f"the text of a mutant is no longer in {name}: {old!r}")
                return 2
        survived = 0
        for name, old, new, *tests in MUTANTS:
            (copy / name).write_text(originals[name].replace(old, new, 1))
            result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                     *(tests[0] if tests else TESTS)],
                                    cwd=copy, capture_output=True, text=True)
            (copy / name).write_text(originals[name])
            killed = result.returncode != 0
            survived += not killed
            print(f"{'killed  ' if killed else 'SURVIVED'} {Path(name).name}: {new.strip()[:90]}", flush=True)
    print(f"{len(MUTANTS) - survived} of {len(MUTANTS)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
