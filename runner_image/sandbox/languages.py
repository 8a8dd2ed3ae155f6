"""How each language is built and run inside the sandbox. Pure data plus a toolchain check.

Memory is capped per language the way its runtime tolerates: an address-space limit for
Python, C and C++; the JVM's own heap flags under a looser address-space cap for Java; V8's
heap flag plus a data-segment cap for JavaScript (V8 reserves far more address space than
it uses, so an address-space cap would stop it from starting at all).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from runner_image.contract import SYNTAX_ERROR_TAG, Verdict

MEMORY_PLACEHOLDER = "{memory_mb}"
# Student programs find their tools here and nowhere else (see sandbox_env).
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    source_file: str
    compile_argv: tuple[str, ...] | None
    run_argv: tuple[str, ...]
    syntax_error_tag: str = Verdict.COMPILE_ERROR
    memory_limit: str = "address_space"  # or "data"
    address_space_overhead_mb: int = 0
    out_of_memory_markers: tuple[bytes, ...] = ()
    compile_memory_mb: int = 1024
    # An interpreted language compiles its source at every run: its compile step, a check
    # that costs a process, runs only after a first run failed with one of these markers,
    # to tell a source that does not compile from a program that raised the same error.
    compile_error_markers: tuple[bytes, ...] = ()

    @property
    def compiles_first(self) -> bool:
        return self.compile_argv is not None and not self.compile_error_markers

    @property
    def toolchain(self) -> tuple[str, ...]:
        argvs = [self.run_argv] + ([self.compile_argv] if self.compile_argv else [])
        return tuple(sorted({argv[0] for argv in argvs if not argv[0].startswith("./")}))

    def run_command(self, memory_mb: int) -> tuple[str, ...]:
        return tuple(arg.replace(MEMORY_PLACEHOLDER, str(memory_mb)) for arg in self.run_argv)


# The sandbox's python3, in isolated mode without site-packages: student code gets the
# standard library and nothing of the runner's environment.
_PYTHON = ("python3", "-I", "-S")

LANGUAGES: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        name="python",
        source_file="main.py",
        compile_argv=(*_PYTHON, "-m", "py_compile", "main.py"),
        run_argv=(*_PYTHON, "main.py"),
        syntax_error_tag=SYNTAX_ERROR_TAG,
        out_of_memory_markers=(b"MemoryError",),
        compile_error_markers=(b"SyntaxError", b"IndentationError", b"TabError"),
    ),
    "c": LanguageSpec(
        name="c",
        source_file="main.c",
        compile_argv=("gcc", "-O2", "-std=c17", "-pipe", "-o", "main", "main.c", "-lm"),
        run_argv=("./main",),
    ),
    "cpp": LanguageSpec(
        name="cpp",
        source_file="main.cpp",
        compile_argv=("g++", "-O2", "-std=c++17", "-pipe", "-o", "main", "main.cpp"),
        run_argv=("./main",),
        out_of_memory_markers=(b"std::bad_alloc",),
    ),
    "java": LanguageSpec(
        name="java",
        source_file="Main.java",
        compile_argv=(
            "javac",
            "-J-Xmx512m",
            "-J-XX:+UseSerialGC",
            "-encoding",
            "UTF-8",
            "Main.java",
        ),
        run_argv=(
            "java",
            f"-Xmx{MEMORY_PLACEHOLDER}m",
            "-Xss16m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:ReservedCodeCacheSize=64m",
            "-XX:MaxMetaspaceSize=128m",
            "-XX:CompressedClassSpaceSize=64m",
            "-cp",
            ".",
            "Main",
        ),
        address_space_overhead_mb=1024,
        out_of_memory_markers=(b"java.lang.OutOfMemoryError",),
        compile_memory_mb=2048,
    ),
    "javascript": LanguageSpec(
        name="javascript",
        source_file="main.js",
        compile_argv=("node", "--check", "main.js"),
        run_argv=(
            "node",
            f"--max-old-space-size={MEMORY_PLACEHOLDER}",
            "--stack-size=8192",
            "main.js",
        ),
        syntax_error_tag=SYNTAX_ERROR_TAG,
        memory_limit="data",
        address_space_overhead_mb=64,
        out_of_memory_markers=(b"JavaScript heap out of memory", b"Array buffer allocation failed"),
    ),
}


def language_problem(name: str) -> str | None:
    """Why `name` cannot be graded on this machine, or None when it can."""
    spec = LANGUAGES.get(name)
    if spec is None:
        return f"unknown language {name!r}; supported: {', '.join(sorted(LANGUAGES))}"
    missing = [tool for tool in spec.toolchain if shutil.which(tool, path=SANDBOX_PATH) is None]
    if missing:
        return f"the {name} toolchain is not installed here (missing: {', '.join(missing)})"
    return None
