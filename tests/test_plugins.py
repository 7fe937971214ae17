"""The plugin system: real entry points, provenance, conflicts, overrides, broken and
refused plugins, auto-load switches, in-code registration and the missing-ops error.

Third-party plugins are real distributions: a module plus a `*.dist-info` folder with
METADATA and entry_points.txt, written to a temporary folder that is put on `sys.path`,
so `importlib.metadata` finds them exactly as it finds an installed package. Every test
that changes the plugin set restores it (and reloads) when it ends.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import textwrap
import warnings

import jax
import numpy as np
import pytest
import tensorflow as tf

import tf2jax
import tf2jax_core
from tf2jax_core import hookimpl, lowering, plugins as plugins_lib
from tf2jax_core.errors import PluginWarning
from tf2jax_core.lowering import Provider
from tf2jax_core.registry import OpTable, Registrar

RNG = np.random.default_rng(0)
X23 = RNG.normal(size=(2, 3)).astype(np.float32)
Y23 = RNG.normal(size=(2, 3)).astype(np.float32)


# Helpers ---------------------------------------------------------------------


@dataclasses.dataclass
class Sandbox:
  """A folder on sys.path that holds fake installed distributions."""

  mp: pytest.MonkeyPatch
  root: pathlib.Path
  modules: list[str] = dataclasses.field(default_factory=list)
  in_code: list[str] = dataclasses.field(default_factory=list)

  def install(self, dist: str, version: str, module: str, source: str,
              ep_name: str | None = None) -> None:
    """Writes `module.py` and a dist-info declaring it in the `tf2jax` group."""
    self.install_entry_points(dist, version, {ep_name or module: (module, source)})

  def install_entry_points(self, dist: str, version: str,
                           entry_points: dict[str, tuple[str, str]]) -> None:
    """Like `install`, for several entry points {name: (module, source)}."""
    lines = ["[tf2jax]"]
    for ep_name, (module, source) in entry_points.items():
      (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
      lines.append(f"{ep_name} = {module}")
      self.modules.append(module)
    info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

  def module(self, name: str):
    return sys.modules[name]

  def register(self, plugin, name: str, version: str | None = None) -> None:
    self.in_code.append(name)
    tf2jax.register_plugin(plugin, name=name, version=version)


@pytest.fixture
def sandbox(tmp_path):
  mp = pytest.MonkeyPatch()
  mp.syspath_prepend(str(tmp_path))
  box = Sandbox(mp, tmp_path)
  yield box
  # Undo env/sys.path first, then reload, so later tests see the normal plugin set.
  mp.undo()
  for name in box.modules:
    sys.modules.pop(name, None)
  for name in box.in_code:
    plugins_lib.manager().unregister(name)
  tf2jax.reload_plugins()


def reload_quietly() -> None:
  """Reloads plugins and fails on any PluginWarning."""
  with warnings.catch_warnings():
    warnings.simplefilter("error", PluginWarning)
    tf2jax.reload_plugins()


def info(name: str) -> tf2jax.PluginInfo:
  found = [i for i in tf2jax.plugins() if i.name == name]
  assert len(found) == 1, [i.name for i in tf2jax.plugins()]
  return found[0]


def table_get(op: str):
  return plugins_lib.manager().op_table().get(op)


def run_converted(fn, *args, jit: bool = False):
  jax_fn, params = tf2jax.convert(fn, *args)
  call = jax.jit(jax_fn) if jit else jax_fn
  outputs, _ = call(params, *args)
  return outputs


@tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32)])
def relu_fn(x):
  return tf.nn.relu(x) * 2.0 + 1.0


def assert_relu_converts() -> None:
  np.testing.assert_allclose(run_converted(relu_fn, X23), relu_fn(X23).numpy(), rtol=1e-6)


# Ops that no plugin lowers, each with a TF function using it and a JAX expression for a
# test plugin's lowering; tests take the first one still free: tier-2 activation gradient
# kernels of the nn catalog, not lowered yet (replace them as they are).
# TF ops outside every first-party catalog (TF's debugger and copy identities), which a
# test plugin lowers; the graph computes something around them so the values say more.
FREE_OP_CANDIDATES = [
    ("DebugGradientIdentity",
     lambda x, y: tf.raw_ops.DebugGradientIdentity(input=x / y), "args[0]"),
    ("Copy", lambda x, y: tf.raw_ops.Copy(input=x - y), "args[0]"),
    ("CopyHost", lambda x, y: tf.raw_ops.CopyHost(input=x * y), "args[0]"),
]


def free_ops(n: int):
  free = [(op, tf.function(tf_body), expr) for op, tf_body, expr in FREE_OP_CANDIDATES
          if table_get(op) is None]
  if len(free) < n:
    pytest.fail("FREE_OP_CANDIDATES: fewer than {n} of its ops are still unlowered; add "
                "TF ops no plugin lowers".format(n=n))
  return free[:n]


def free_op():
  return free_ops(1)[0]


PLUGIN_TEMPLATE = """\
    \"\"\"A third-party tf2jax plugin written by the tests.\"\"\"
    import jax
    import jax.numpy as jnp
    import jax.scipy.special
    from tf2jax_core import hookimpl, lowering

    TF2JAX_PLUGIN_API = {api}
    BUILT = []

    @lowering({op!r}, attrs={{"T": ("float32",)}})
    def op_lowering(node):
      BUILT.append(node.path)
      return lambda *args: {expr}

    @hookimpl
    def tf2jax_register_ops(registry):
      registry.add(op_lowering{add_kwargs})
"""


def plugin_source(op: str, expr: str, api: int = 1, override: bool = False) -> str:
  return textwrap.dedent(PLUGIN_TEMPLATE).format(
      op=op, expr=expr, api=api, add_kwargs=", override=True" if override else "")


# 1. A third-party plugin through a real entry point -------------------------


def test_third_party_plugin_found_through_entry_point(sandbox):
  op, tf_fn, expr = free_op()
  assert table_get(op) is None
  sandbox.install("acme-tf2jax-ops", "1.2.3", "acme_tf2jax_ops", plugin_source(op, expr),
                  ep_name="acme")
  reload_quietly()

  acme = info("acme-tf2jax-ops")
  assert acme.version == "1.2.3"
  assert acme.status == "loaded" and acme.error is None
  assert acme.source == "entry point acme = acme_tf2jax_ops"
  assert acme.ops == [op] and acme.num_ops == 1
  # The first-party plugins are still there alongside it.
  assert {"tf2jax", "tf2jax-nn", "tf2jax-random", "tf2jax-controlflow",
          "tf2jax-xla"} <= {i.name for i in tf2jax.plugins()}

  # Provenance: the op table says who lowers the op.
  low = table_get(op)
  assert low.provider == Provider("acme-tf2jax-ops", "1.2.3")
  assert str(low.provider) == "acme-tf2jax-ops 1.2.3"
  assert not low.override

  # It converts a real tf.function and matches TensorFlow, also under jit.
  x, y = X23, np.abs(Y23) + 0.5
  expected = tf_fn(x, y).numpy()
  np.testing.assert_allclose(run_converted(tf_fn, x, y), expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(run_converted(tf_fn, x, y, jit=True), expected,
                             rtol=1e-5, atol=1e-6)
  assert sandbox.module("acme_tf2jax_ops").BUILT  # its lowering did the work

  # Provenance in errors: a dtype the lowering refuses names the plugin.
  half = x.astype(np.float16), y.astype(np.float16)
  with pytest.raises(tf2jax.UnsupportedOpsError) as err:
    tf2jax.convert(tf_fn, *half)
  assert err.value.missing == []
  bad = [b for b in err.value.bad_attrs if b.op == op]
  assert bad and bad[0].attr == "T"
  assert "acme-tf2jax-ops 1.2.3" in bad[0].reason
  assert "acme-tf2jax-ops 1.2.3" in str(err.value)


def test_third_party_plugin_gone_after_uninstall(sandbox):
  op, tf_fn, expr = free_op()
  sandbox.install("acme-tf2jax-ops", "1.2.3", "acme_tf2jax_ops", plugin_source(op, expr))
  reload_quietly()
  assert table_get(op) is not None
  sandbox.mp.undo()  # "pip uninstall": the distribution leaves sys.path
  reload_quietly()
  assert table_get(op) is None
  assert "acme-tf2jax-ops" not in {i.name for i in tf2jax.plugins()}


def test_distribution_with_two_entry_points(sandbox):
  (op_a, fn_a, expr_a), (op_b, fn_b, expr_b) = free_ops(2)
  sandbox.install_entry_points("acme-two", "0.2.0", {
      "first": ("acme_two_first", plugin_source(op_a, expr_a)),
      "second": ("acme_two_second", plugin_source(op_b, expr_b)),
  })
  reload_quietly()
  two = [i for i in tf2jax.plugins() if i.name == "acme-two"]
  assert sorted((i.source, i.status, tuple(i.ops)) for i in two) == [
      ("entry point first = acme_two_first", "loaded", (op_a,)),
      ("entry point second = acme_two_second", "loaded", (op_b,)),
  ]
  for op, fn in ((op_a, fn_a), (op_b, fn_b)):
    assert table_get(op).provider == Provider("acme-two", "0.2.0")
    x, y = X23, np.abs(Y23) + 0.5
    np.testing.assert_allclose(run_converted(fn, x, y), fn(x, y).numpy(),
                               rtol=1e-5, atol=1e-6)


# 2. Conflict and override ------------------------------------------------------


RELU_SOURCE = """\
    import jax.numpy as jnp
    from tf2jax_core import REAL, hookimpl, lowering

    TF2JAX_PLUGIN_API = 1
    BUILT = []

    @lowering("Relu", attrs={{"T": REAL}})
    def relu(node):
      BUILT.append(node.path)
      return lambda x: jnp.maximum(x, 0)

    @hookimpl
    def tf2jax_register_ops(registry):
      registry.add(relu{add_kwargs})
"""


def test_conflicting_plugins_raise_naming_both(sandbox):
  sandbox.install("acme-relu", "2.0.1", "acme_relu", RELU_SOURCE.format(add_kwargs=""))
  reload_quietly()
  with pytest.raises(tf2jax.PluginConflictError) as err:
    tf2jax.convert(relu_fn, X23)
  message = str(err.value)
  assert "Relu" in message
  assert "tf2jax-nn 0.1.0" in message and "acme-relu 2.0.1" in message
  assert "override=True" in message
  assert isinstance(err.value, ValueError)
  assert sandbox.module("acme_relu").BUILT == []
  assert any("Relu" in c for c in plugins_lib.manager().conflicts())
  # `plugins()` still answers, and lists the contested op under both plugins.
  assert "Relu" in info("acme-relu").ops and "Relu" in info("tf2jax-nn").ops


def test_override_wins_and_provenance_says_so(sandbox):
  sandbox.install("acme-relu", "2.0.1", "acme_relu",
                  RELU_SOURCE.format(add_kwargs=", override=True"))
  reload_quietly()
  assert plugins_lib.manager().conflicts() == []
  low = table_get("Relu")
  assert low.provider == Provider("acme-relu", "2.0.1")
  assert low.override is True
  assert info("acme-relu").ops == ["Relu"]
  assert "Relu" not in info("tf2jax-nn").ops  # lost to the override
  assert "BiasAdd" in info("tf2jax-nn").ops  # the rest of tf2jax-nn still counts

  assert_relu_converts()
  assert sandbox.module("acme_relu").BUILT  # the override's lowering was used


def test_op_table_conflict_rules():
  a, b, c = Provider("a", "1"), Provider("b", "2"), Provider("c", "3")

  @lowering("Foo")
  def foo(node):
    return lambda x: x

  def reg(provider, override=False):
    r = Registrar(provider)
    r.add(foo, override=override)
    return r.lowerings

  assert OpTable(reg(a)).get("Foo").provider == a
  table = OpTable(reg(a) + reg(b))
  assert table.get("Foo") is None and "Foo" not in table
  with pytest.raises(tf2jax.PluginConflictError, match="a 1 and b 2"):
    table.raise_conflicts()
  assert OpTable(reg(a) + reg(b, override=True)).get("Foo").provider == b
  both = OpTable(reg(a, True) + reg(b, True) + reg(c))
  assert "several plugins" in both.conflicts[0]
  twice = OpTable(reg(a) + reg(a))
  assert "twice by the same plugin" in twice.conflicts[0]
  with pytest.raises(TypeError, match="takes a Lowering"):
    Registrar(a).add(lambda node: None)


# 3. A broken plugin ----------------------------------------------------------------


def test_broken_plugin_is_reported_and_others_work(sandbox):
  sandbox.install("acme-broken", "0.3.0", "acme_broken", """\
      TF2JAX_PLUGIN_API = 1
      raise ImportError("acme-broken needs libacme.so")
  """, ep_name="broken")
  with pytest.warns(PluginWarning, match="acme-broken 0.3.0 failed") as record:
    tf2jax.reload_plugins()
  assert any("libacme.so" in str(w.message) for w in record)

  broken = info("acme-broken")
  assert broken.status == "failed"
  assert broken.version == "0.3.0"
  assert broken.source == "entry point broken = acme_broken"
  assert "ImportError" in broken.error and "libacme.so" in broken.error
  assert broken.ops == []
  assert all(i.status == "loaded" for i in tf2jax.plugins() if i.name != "acme-broken")
  assert table_get("Relu").provider.name == "tf2jax-nn"
  assert_relu_converts()


def test_plugin_whose_hook_raises_is_reported(sandbox):
  class Exploding:
    TF2JAX_PLUGIN_API = 1

    @hookimpl
    def tf2jax_register_ops(self, registry):
      raise RuntimeError("boom in register")

  with pytest.warns(PluginWarning, match="boom in register"):
    sandbox.register(Exploding(), name="exploding")
  exploding = info("exploding")
  assert exploding.status == "failed" and "RuntimeError" in exploding.error
  assert_relu_converts()


# 4. Plugin API version ---------------------------------------------------------------


def test_incompatible_api_version_is_refused(sandbox):
  op, tf_fn, expr = free_op()
  sandbox.install("acme-future", "9.0.0", "acme_future", plugin_source(op, expr, api=99))
  with pytest.warns(PluginWarning, match="acme-future 9.0.0 refused"):
    tf2jax.reload_plugins()
  future = info("acme-future")
  assert future.status == "refused"
  assert future.ops == []
  assert "99" in future.error
  assert "plugin API 1" in future.error  # the versions that fit
  assert tf2jax_core.PLUGIN_API_VERSION == 1
  assert sandbox.module("acme_future").BUILT == []
  assert table_get(op) is None
  assert_relu_converts()


def test_plugin_without_api_version_is_refused(sandbox):
  class NoVersion:
    @hookimpl
    def tf2jax_register_ops(self, registry):
      raise AssertionError("must not be called")

  with pytest.warns(PluginWarning, match="does not declare TF2JAX_PLUGIN_API"):
    sandbox.register(NoVersion(), name="no-version", version="0.0.1")
  refused = info("no-version")
  assert refused.status == "refused" and "plugin API 1" in refused.error


# 5. Auto-load switches ---------------------------------------------------------------


def test_autoload_off_loads_only_the_core(sandbox):
  sandbox.mp.setenv(plugins_lib.AUTOLOAD_ENV, "1")
  reload_quietly()
  assert [i.name for i in tf2jax.plugins()] == ["tf2jax"]
  assert table_get("Relu") is None
  with pytest.raises(tf2jax.UnsupportedOpsError) as err:
    tf2jax.convert(relu_fn, X23)
  (missing,) = err.value.missing
  assert missing.op == "Relu" and missing.nodes == ("Relu",)
  # tf2jax-nn is installed here, so the hint says why it is not used.
  assert "tf2jax-nn" in missing.hint and "installed but not loaded" in missing.hint
  assert plugins_lib.AUTOLOAD_ENV in missing.hint
  assert missing.hint in str(err.value)

  # A notebook can still register a plugin in code with auto-loading off.
  import tf2jax_nn.plugin
  sandbox.register(tf2jax_nn.plugin, name="nn-by-hand", version="0.1.0")
  assert table_get("Relu").provider == Provider("nn-by-hand", "0.1.0")
  assert_relu_converts()


@pytest.mark.parametrize("value", ["0", ""])
def test_autoload_env_falsy_values_keep_autoload(sandbox, value):
  sandbox.mp.setenv(plugins_lib.AUTOLOAD_ENV, value)
  reload_quietly()
  assert "tf2jax-nn" in {i.name for i in tf2jax.plugins()}


def test_select_plugins_by_entry_point_or_distribution_name(sandbox):
  sandbox.mp.setenv(plugins_lib.SELECT_ENV, "nn")
  reload_quietly()
  assert sorted(i.name for i in tf2jax.plugins()) == ["tf2jax", "tf2jax-nn"]
  assert_relu_converts()

  sandbox.mp.setenv(plugins_lib.SELECT_ENV, "tf2jax-random, controlflow")
  reload_quietly()
  assert sorted(i.name for i in tf2jax.plugins()) == [
      "tf2jax", "tf2jax-controlflow", "tf2jax-random"]
  with pytest.raises(tf2jax.UnsupportedOpsError, match="installed but not loaded"):
    tf2jax.convert(relu_fn, X23)


# 6. The all-missing-ops error --------------------------------------------------------


def unlowered_catalog_op(sandbox, package: str):
  """A TF op that `package`'s catalog lists and nothing lowers. The first-party packages
  lower every op they list, so the catalog is patched to list one of TF's identities."""
  op, body = "DebugGradientIdentity", lambda x: tf.raw_ops.DebugGradientIdentity(input=x + 1.0)
  assert table_get(op) is None and op not in plugins_lib.catalog()
  sandbox.mp.setitem(plugins_lib.catalog(), op, [package, 2])
  return op, body


def test_all_missing_ops_in_one_error_with_install_hints(sandbox):
  sandbox.mp.setenv(plugins_lib.SELECT_ENV, "random,xla")
  sandbox.mp.setattr(plugins_lib, "_installed", lambda dist: False)
  reload_quietly()
  core_op, core_body = unlowered_catalog_op(sandbox, "core")
  catalog = plugins_lib.catalog()
  assert catalog["Conv2D"][0] == "nn" and catalog["Relu"][0] == "nn"
  assert "AsString" not in catalog and "StringLength" not in catalog

  @tf.function
  def inner(x):
    return core_body(x)

  @tf.function(input_signature=[tf.TensorSpec([1, 5, 5, 2], tf.float32)])
  def model(x):
    y = tf.nn.conv2d(x, tf.ones([3, 3, 2, 4]), strides=1, padding="SAME")
    y = tf.nn.relu(y) + tf.nn.relu(y * 2.0)
    lengths = tf.strings.length(tf.strings.as_string(x))
    return y, inner(x), lengths

  with pytest.raises(tf2jax.UnsupportedOpsError) as err:
    tf2jax.convert(model, np.ones([1, 5, 5, 2], np.float32))
  error = err.value
  assert isinstance(error, ValueError) and isinstance(error, tf2jax.ConversionError)
  missing = {m.op: m for m in error.missing}
  assert set(missing) == {"Conv2D", "Relu", core_op, "AsString", "StringLength"}
  assert error.bad_attrs == []

  assert missing["Conv2D"].nodes == ("Conv2D",)
  assert sorted(missing["Relu"].nodes) == ["Relu", "Relu_1"]
  (core_path,) = missing[core_op].nodes
  graph, _, node = core_path.rpartition("/")
  assert node == core_op and "inner" in graph  # found inside the called function
  for op in ("Conv2D", "Relu"):
    assert missing[op].hint == "provided by tf2jax-nn: pip install tf2jax[nn]"
  assert "core" in missing[core_op].hint and "not lowered yet" in missing[core_op].hint
  for op in ("AsString", "StringLength"):
    assert missing[op].hint == "no known plugin provides it"

  message = str(error)
  assert "5 op type(s) have no lowering" in message
  assert message.count("pip install tf2jax[nn]") == 2
  for op, m in missing.items():
    line = next(line for line in message.splitlines() if line.strip().startswith(op + " "))
    assert all(repr(n) in line for n in m.nodes) and m.hint in line


def test_missing_op_hint_when_plugin_loaded_but_op_not_lowered(sandbox):
  reload_quietly()
  op, _ = unlowered_catalog_op(sandbox, "nn")
  version = next(i.version for i in tf2jax.plugins() if i.name == "tf2jax-nn")
  assert plugins_lib.manager().install_hint(op) == (
      f"tf2jax-nn {version} is loaded but does not lower it yet")


# 7. In-code registration -------------------------------------------------------------


def test_register_and_unregister_plugin_in_code(sandbox):
  op, tf_fn, expr = free_op()
  namespace = {}
  exec(plugin_source(op, expr), namespace)

  class NotebookOps:
    TF2JAX_PLUGIN_API = 1

    @hookimpl
    def tf2jax_register_ops(self, registry):
      registry.add(namespace["op_lowering"])

  x, y = X23, np.abs(Y23) + 0.5
  with pytest.raises(tf2jax.UnsupportedOpsError):
    tf2jax.convert(tf_fn, x, y)

  sandbox.register(NotebookOps(), name="notebook-ops", version="0.0.1")
  notebook = info("notebook-ops")
  assert notebook.status == "loaded" and notebook.source == "registered in code"
  assert notebook.ops == [op]
  assert table_get(op).provider == Provider("notebook-ops", "0.0.1")
  np.testing.assert_allclose(run_converted(tf_fn, x, y), tf_fn(x, y).numpy(),
                             rtol=1e-5, atol=1e-6)

  # Registering again under the same name replaces it rather than conflicting.
  sandbox.register(NotebookOps(), name="notebook-ops", version="0.0.2")
  assert table_get(op).provider == Provider("notebook-ops", "0.0.2")
  assert plugins_lib.manager().conflicts() == []

  tf2jax.unregister_plugin("notebook-ops")
  assert "notebook-ops" not in {i.name for i in tf2jax.plugins()}
  assert table_get(op) is None
  with pytest.raises(tf2jax.UnsupportedOpsError):
    tf2jax.convert(tf_fn, x, y)


def test_register_module_in_code_takes_its_version(sandbox):
  import types
  op, _, expr = free_op()
  module = types.ModuleType("notebook_module")
  exec(plugin_source(op, expr), module.__dict__)
  module.__version__ = "3.1.4"
  sandbox.register(module, name="notebook-module")
  assert info("notebook-module").version == "3.1.4"
  assert table_get(op).provider == Provider("notebook-module", "3.1.4")


# 8. A hook implementation without a hook spec ------------------------------------------


def test_misspelled_hook_is_reported_as_failed(sandbox):
  op, _, expr = free_op()
  source = plugin_source(op, expr) + textwrap.dedent("""

      @hookimpl
      def tf2jax_register_opz(registry):
        registry.add(op_lowering)
  """)
  sandbox.install("acme-typo", "0.0.9", "acme_typo", source)
  with pytest.warns(PluginWarning, match="acme-typo 0.0.9 failed"):
    tf2jax.reload_plugins()
  typo = info("acme-typo")
  assert typo.status == "failed"
  assert "tf2jax_register_opz" in typo.error
  assert typo.ops == [] and table_get(op) is None
  assert all(i.status == "loaded" for i in tf2jax.plugins() if i.name != "acme-typo")
  assert_relu_converts()


def test_hook_with_wrong_arguments_is_reported_as_failed(sandbox):
  class WrongArgs:
    TF2JAX_PLUGIN_API = 1

    @hookimpl
    def tf2jax_register_ops(self, registry, extra):
      raise AssertionError("must not be called")

  with pytest.warns(PluginWarning, match="wrong-args"):
    sandbox.register(WrongArgs(), name="wrong-args", version="1.0")
  assert info("wrong-args").status == "failed"
  assert_relu_converts()
