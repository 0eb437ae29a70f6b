"""The package's shape: imports run one way through the layers, without cycles, files stay small,
and the public names stay where users import them (docs/design.md#layers-of-the-package)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

PACKAGE = ROOT / "lightning_gans"
# what each part may import (besides itself); everything else is a higher layer
LOW = {"errors", "lightning_internals", "files"}  # below every part
ALLOWED = {
    "errors": set(),
    "signals": set(),
    "lightning_internals": set(),
    "files": set(),
    "run_lock": {"errors"},
    "data": {"errors", "signals"},
    "nets": {"errors"},
    "metrics": {"errors", "data"},
    "models": LOW | {"data", "nets", "metrics"},
    # what runs inside the Trainer
    "callbacks": LOW | {"signals", "run_lock", "data", "nets", "metrics", "models"},
    # what starts a run: the CLI, run directories, loggers, SLURM
    "launch": LOW | {"signals", "run_lock", "data", "nets", "metrics", "models", "callbacks"},
    "tools": LOW | {"signals", "data", "nets", "metrics", "models", "callbacks", "launch"},
    "__main__": {"signals", "launch"},
}
ALGORITHMS = ["gan.py", "wgan.py", "wgan_gp.py", "vae.py"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, at the top or inside functions alike. An
    imported name that is a submodule counts as that submodule, else as its package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lightning_gans")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lightning_gans"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_every_import_resolves_to_a_module():
    unknown = {(m, t) for m, targets in GRAPH.items() for t in targets if t not in MODULES}
    assert unknown == set()


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


def test_imports_follow_the_layers():
    wrong = []
    for module, targets in GRAPH.items():
        src = part(module)
        if src == "__init__":
            continue  # the package's front door re-exports from every layer
        for target in targets:
            dst = part(target)
            if dst != src and dst not in ALLOWED[src]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_files_stay_small_and_model_files_read_as_one_algorithm():
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 300} == {}
    models = {name: sizes[Path("lightning_gans/models") / name] for name in ALGORITHMS}
    assert all(n <= 80 for n in models.values()), models


def test_no_folder_holds_more_than_30_percent_of_the_package():
    lines = {p: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    total = sum(lines.values())
    folders = {p.parent.name: 0 for p in lines if p.parent != PACKAGE}
    for p, n in lines.items():
        if p.parent != PACKAGE:
            folders[p.parent.name] += n
    assert {f: round(n / total, 3) for f, n in folders.items() if n > 0.3 * total} == {}


def test_the_benchmarks_import_no_cycle():
    scripts = {p.stem: p for p in (ROOT / "benchmarks").glob("*.py")}
    graph = {}
    for name, path in scripts.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in scripts:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in scripts}
        graph[name] = found
    for start in graph:  # depth-first from each script: no way back to itself
        stack, seen = list(graph[start]), set()
        while stack:
            node = stack.pop()
            assert node != start, f"benchmarks: {start} imports itself through {node}"
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])


def test_public_names_and_config_class_paths_import():
    import lightning_gans

    for name in ("GAN", "WGAN", "WGANGP", "VAE", "GANDataModule", "AdversarialModule"):
        assert hasattr(lightning_gans, name)
    paths = {
        yaml.safe_load(p.read_text())["model"]["class_path"]
        for p in (ROOT / "configs").rglob("*.yaml")
        if "class_path" in p.read_text()
    }
    for path in paths:
        module, _, cls = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type)


@pytest.mark.parametrize("cls", ["GAN", "WGAN", "WGANGP", "VAE"])
def test_every_option_reaches_the_cli(cls):
    """``**kwargs`` forwarded to the bases: --help lists the subclass's and the bases' options."""
    from tests.helpers import run_module

    proc = run_module("fit", "--model", f"lightning_gans.{cls}", "--model.help", cls)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shared = ["--model.latent_dim", "--model.seed"]
    if cls != "VAE":
        shared += ["--model.n_critic", "--model.critic_schedule"]
    for option in shared:
        assert option in proc.stdout, option
