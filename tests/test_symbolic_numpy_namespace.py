"""``numpy_modules()`` gives sympy.lambdify the namespace of ``modules="numpy"`` (same names,
same objects, same printed code) without importing numpy's lazy submodules (numpy 2's
``from numpy import *`` loads ``ma``, ``f2py``, ``testing`` ...: 50-120 ms)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import inspect, sys, types
    import numpy as np, sympy
    from physkan.symbolic.parse import lambdify_numpy, numpy_modules
    from sympy.utilities.lambdify import MODULES, _import

    x, y = sympy.symbols("x y")
    f = lambdify_numpy(sympy.exp(y**2 + sympy.sin(sympy.pi * x)), ["x", "y"])
    assert abs(f(np.array([[0.5, 1.0]]))[0] - np.exp(2.0)) < 1e-12
    lazy = [m for m in ("numpy.ma", "numpy.f2py", "numpy.testing", "numpy.polynomial") if m in sys.modules]
    assert not lazy, lazy

    ours = vars(numpy_modules()[-1])
    _import("numpy")  # sympy's own namespace for "numpy", made with the star import
    theirs = MODULES["numpy"][0]
    assert set(ours) <= set(theirs), set(ours) - set(theirs)
    assert all(ours[k] is theirs[k] for k in ours), [k for k in ours if ours[k] is not theirs[k]]
    left_out = {k for k in theirs if k not in ours}
    assert left_out and all(isinstance(theirs[k], types.ModuleType) for k in left_out), left_out

    exprs = [sympy.exp(y**2 + sympy.sin(sympy.pi * x)), sympy.Heaviside(x) * abs(y),
             sympy.Piecewise((x, x > 0), (y, True)), sympy.Max(x, y) + sympy.I * sympy.E,
             sympy.atan2(y, x) + sympy.floor(y) + sympy.Mod(x, 2)]
    for e in exprs:
        new = sympy.lambdify([x, y], e, modules=numpy_modules())
        old = sympy.lambdify([x, y], e, modules=[numpy_modules()[0], "numpy"])
        assert inspect.getsource(new) == inspect.getsource(old), e
        a, b = np.linspace(0.3, 2, 5), np.linspace(-1, 1.5, 5)
        assert np.array_equal(new(a, b), old(a, b)), e
    print("ok")
    """
)


def test_numpy_namespace_is_sympys_without_lazy_submodules() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
