"""The same five behaviours (accepted, wrong answer, time limit, memory limit, runtime
error) judged right in every supported language, each compiled once in the sandbox, through
the real runner process."""

from __future__ import annotations

import pytest

from runner_image.sandbox.languages import LANGUAGES, language_problem

TESTS = [
    {"name": "small", "stdin": "2 3\n", "expected_stdout": "5\n"},
    {"name": "bigger", "stdin": "40 2\n", "expected_stdout": "42\n"},
]

PROGRAMS: dict[str, dict[str, str]] = {
    "python": {
        "accepted": "a, b = map(int, input().split())\nprint(a + b)\n",
        "wrong_answer": "a, b = map(int, input().split())\nprint(a - b)\n",
        "time_limit_exceeded": "while True:\n    pass\n",
        "memory_limit_exceeded": "blocks = []\nwhile True:\n"
        "    blocks.append(bytearray(1 << 24))\n",
        "runtime_error": "raise SystemExit(3)\n",
    },
    "c": {
        "accepted": '#include <stdio.h>\nint main(void){long a,b;scanf("%ld %ld",&a,&b);'
        'printf("%ld\\n",a+b);return 0;}\n',
        "wrong_answer": '#include <stdio.h>\nint main(void){long a,b;scanf("%ld %ld",&a,&b);'
        'printf("%ld\\n",a-b);return 0;}\n',
        "time_limit_exceeded": "int main(void){volatile unsigned long i=0;for(;;)i++;}\n",
        "memory_limit_exceeded": "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void){for(;;){char*p=malloc(1<<24);memset(p,1,1<<24);}}\n",
        "runtime_error": "int main(void){int*p=0;return *p;}\n",
    },
    "cpp": {
        "accepted": "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;"
        'std::cout<<a+b<<"\\n";}\n',
        "wrong_answer": "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;"
        'std::cout<<a*b<<"\\n";}\n',
        "time_limit_exceeded": "int main(){volatile unsigned long i=0;for(;;)i++;}\n",
        "memory_limit_exceeded": "#include <vector>\n#include <string>\nint main(){"
        "std::vector<std::string> v;for(;;)v.emplace_back(1<<24,'x');}\n",
        "runtime_error": '#include <stdexcept>\nint main(){throw std::runtime_error("boom");}\n',
    },
    "java": {
        "accepted": "import java.util.*;\npublic class Main{public static void main(String[] a)"
        "{Scanner s=new Scanner(System.in);System.out.println(s.nextLong()+s.nextLong());}}\n",
        "wrong_answer": "public class Main{public static void main(String[] a)"
        "{System.out.println(0);}}\n",
        "time_limit_exceeded": "public class Main{public static void main(String[] a)"
        "{long i=0;while(true){i++;}}}\n",
        "memory_limit_exceeded": "import java.util.*;\npublic class Main{public static void "
        "main(String[] a){List<long[]> l=new ArrayList<>();while(true)l.add(new long[1<<20]);}}\n",
        "runtime_error": "public class Main{public static void main(String[] a)"
        "{int[] x=new int[1];System.out.println(x[2]);}}\n",
    },
    "javascript": {
        "accepted": 'const [a,b]=require("fs").readFileSync(0,"utf8").trim().split(/\\s+/)'
        ".map(Number);console.log(a+b);\n",
        "wrong_answer": "console.log(7);\n",
        "time_limit_exceeded": "for(;;){}\n",
        "memory_limit_exceeded": "const a=[];for(;;){a.push(new Array(1e6).fill(1.5));}\n",
        "runtime_error": "null.boom();\n",
    },
}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize(
    "expected",
    ["accepted", "wrong_answer", "time_limit_exceeded", "memory_limit_exceeded", "runtime_error"],
)
def test_verdict_in_every_language(language, expected, run_submission):
    problem = language_problem(language)
    if problem:
        pytest.fail(f"{language} cannot be graded on this machine: {problem}")
    run = run_submission(
        PROGRAMS[language][expected],
        TESTS,
        language=language,
        time_limit_ms=1000,
        memory_limit_mb=128,
        require_isolation="basic",
    )
    assert run.verdicts() == [expected, expected], run.result["tests"]
    assert run.result["score"] == (100 if expected == "accepted" else 0)


@pytest.mark.parametrize("language", ["c", "cpp", "java"])
def test_compile_errors_name_the_problem(language, run_submission):
    code = {"c": "int main( {", "cpp": "int main( {", "java": "class {"}[language]
    run = run_submission(code, TESTS, language=language, require_isolation="basic")
    assert run.result["verdict"] == "compile_error"
    assert run.result["fail_tags"] == ["compile_error"]
    assert "error" in run.result["tests"][0]["message"]
