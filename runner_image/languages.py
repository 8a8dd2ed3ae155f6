"""How each language is built and run inside the sandbox. Pure data plus a toolchain check."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    source_file: str
    compile_argv: tuple[str, ...] | None
    run_argv: tuple[str, ...]
    syntax_error_tag: str = "compile_error"

    @property
    def toolchain(self) -> tuple[str, ...]:
        argvs = [self.run_argv] + ([self.compile_argv] if self.compile_argv else [])
        return tuple(sorted({argv[0] for argv in argvs}))


# The runner's own interpreter, in isolated mode without site-packages: student code gets the
# standard library and nothing of the runner's environment.
_PYTHON = (sys.executable, "-I", "-S")

LANGUAGES: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        name="python",
        source_file="main.py",
        compile_argv=(*_PYTHON, "-m", "py_compile", "main.py"),
        run_argv=(*_PYTHON, "main.py"),
        syntax_error_tag="syntax_error",
    ),
}


def language_problem(name: str) -> str | None:
    """Why `name` cannot be graded on this machine, or None when it can."""
    spec = LANGUAGES.get(name)
    if spec is None:
        return f"unknown language {name!r}; supported: {', '.join(sorted(LANGUAGES))}"
    missing = [tool for tool in spec.toolchain if shutil.which(tool) is None]
    if missing:
        return f"the {name} toolchain is not installed here (missing: {', '.join(missing)})"
    return None
