"""The labelled set: submissions with a known bug each, in the five languages, with the tests
the bug fails and the words that name its cause (the model is shown the task, never the
label). `quality.py --record` grades them for real and checks that exactly the labelled
tests fail; `quality.py` scores a model's feedback on them."""

from __future__ import annotations

from dataclasses import dataclass

from runner_image.contract import TestCase

OFF_BY_ONE = (
    r"off.by.one",
    r"\bone (too few|too many|less|short|fewer)\b",
    r"\blast (number|value|element|item|character|one)\b",
    r"\b(upper|end) (bound|limit|index)\b",
    r"\bexclusive\b",
    r"\binclud(e|es|ing)\b.*\b(n|last|end)\b",
)
OVERFLOW = (
    r"overflow",
    r"\blong\b(?! as)",
    r"\bint64|64.bit|32.bit",
    r"too (big|large) for",
    r"wrap",
)


@dataclass(frozen=True)
class Case:
    id: str
    task: str  # what the assignment asks, as its description
    language: str
    code: str
    tests: tuple[TestCase, ...]
    failing: frozenset[str]  # the tests the bug fails
    cause: str  # the bug, in a few words
    patterns: tuple[str, ...]  # regexes (case-insensitive): any names the cause
    time_limit_ms: int = 2000


def _io(name: str, stdin: str, expected: str, hidden: bool = False) -> TestCase:
    return TestCase(name=name, stdin=stdin, expected_stdout=expected, hidden=hidden)


def _pairs_input(n: int) -> str:
    return f"{n} 7\n" + " ".join(str(i % 10) for i in range(n)) + "\n"


def _pairs_expected(n: int) -> str:
    counts = [0] * 10
    for i in range(n):
        counts[i % 10] += 1
    pairs = sum(counts[a] * counts[7 - a] for a in range(8) if a < 7 - a)
    return f"{pairs}\n"


CASES: tuple[Case, ...] = (
    Case(
        "py_sum_range_stops_early",
        "Read n and print 1 + 2 + ... + n.",
        "python",
        "n = int(input())\ntotal = 0\nfor i in range(1, n):\n    total += i\nprint(total)\n",
        (_io("one", "1\n", "1\n"), _io("five", "5\n", "15\n"), _io("zero", "0\n", "0\n")),
        frozenset({"one", "five"}),
        "range(1, n) stops before n",
        (*OFF_BY_ONE, r"range\(1, ?n\)", r"n ?\+ ?1"),
    ),
    Case(
        "py_max_starts_at_zero",
        "Read integers on one line and print the largest.",
        "python",
        "xs = list(map(int, input().split()))\nbest = 0\nfor x in xs:\n"
        "    if x > best:\n        best = x\nprint(best)\n",
        (_io("positive", "3 1 2\n", "3\n"), _io("all negative", "-5 -2 -9\n", "-2\n")),
        frozenset({"all negative"}),
        "the maximum starts at 0, above every negative number",
        (r"initiali[sz]", r"start\w* (at|with|from) (0|zero)", r"best = 0", r"first element"),
    ),
    Case(
        "py_average_of_nothing",
        "Read n, then n integers; print their average rounded down, or 0 when n is 0.",
        "python",
        "n = int(input())\nxs = list(map(int, input().split())) if n else []\n"
        "print(sum(xs) // n)\n",
        (_io("three", "3\n1 2 3\n", "2\n"), _io("empty", "0\n", "0\n")),
        frozenset({"empty"}),
        "divides by zero when the list is empty",
        (r"zero", r"empty", r"ZeroDivision"),
    ),
    Case(
        "py_digit_count_never_shrinks",
        "Read a positive integer and print how many digits it has.",
        "python",
        "n = int(input())\ncount = 0\nwhile n > 0:\n    count += 1\n    n // 10\nprint(count)\n",
        (_io("single", "7\n", "1\n"), _io("five digits", "12345\n", "5\n")),
        frozenset({"single", "five digits"}),
        "n // 10 is never assigned back, so the loop never ends",
        (r"infinite", r"never (ends|stops|terminates|changes)", r"n //= ?10", r"not (re)?assigned"),
        time_limit_ms=1000,
    ),
    Case(
        "py_palindrome_ignores_case",
        "Read a word and print yes if it reads the same backwards, ignoring case, else no.",
        "python",
        "s = input().strip()\nprint('yes' if s == s[::-1] else 'no')\n",
        (_io("lower", "abba\n", "yes\n"), _io("mixed case", "Level\n", "yes\n")),
        frozenset({"mixed case"}),
        "compares without folding case",
        (r"\bcase\b", r"lower", r"upper", r"capital"),
    ),
    Case(
        "py_counts_odd_not_even",
        "Read integers on one line and print how many are even.",
        "python",
        "xs = input().split()\nprint(sum(1 for x in xs if int(x) % 2 == 1))\n",
        (_io("mostly even", "2 4 6 1\n", "3\n"), _io("all odd", "1 3\n", "0\n")),
        frozenset({"mostly even", "all odd"}),
        "tests for odd numbers instead of even ones",
        (r"\bodd\b", r"% ?2 ?== ?1", r"== ?0", r"parity"),
    ),
    Case(
        "c_sum_overflows_int",
        "Read n, then n integers up to 10^9; print their sum.",
        "c",
        '#include <stdio.h>\nint main(void) {\n  int n, x, sum = 0;\n  scanf("%d", &n);\n'
        '  for (int i = 0; i < n; i++) { scanf("%d", &x); sum += x; }\n'
        '  printf("%d\\n", sum);\n  return 0;\n}\n',
        (
            _io("small", "2\n1 2\n", "3\n"),
            _io("billions", "3\n1000000000 1000000000 1000000000\n", "3000000000\n"),
        ),
        frozenset({"billions"}),
        "the sum overflows a 32-bit int",
        OVERFLOW,
    ),
    Case(
        "c_max_skips_last",
        "Read n (at most 100), then n integers; print the largest.",
        "c",
        '#include <stdio.h>\nint main(void) {\n  int n, a[100];\n  scanf("%d", &n);\n'
        '  for (int i = 0; i < n; i++) scanf("%d", &a[i]);\n  int best = a[0];\n'
        "  for (int i = 1; i < n - 1; i++) if (a[i] > best) best = a[i];\n"
        '  printf("%d\\n", best);\n  return 0;\n}\n',
        (_io("max first", "3\n3 1 2\n", "3\n"), _io("max last", "3\n1 2 3\n", "3\n")),
        frozenset({"max last"}),
        "the loop stops before the last element",
        (*OFF_BY_ONE, r"i < n\b"),
    ),
    Case(
        "c_integer_division",
        "Read n, then n integers; print their average with two decimals.",
        "c",
        '#include <stdio.h>\nint main(void) {\n  int n, x, sum = 0;\n  scanf("%d", &n);\n'
        '  for (int i = 0; i < n; i++) { scanf("%d", &x); sum += x; }\n'
        '  printf("%.2f\\n", (double)(sum / n));\n  return 0;\n}\n',
        (_io("whole", "2\n2 4\n", "3.00\n"), _io("half", "2\n1 2\n", "1.50\n")),
        frozenset({"half"}),
        "integer division before the cast to double",
        (r"integer division", r"\bcast", r"truncat", r"sum / n"),
    ),
    Case(
        "c_factorial_no_base_for_zero",
        "Read n (0 to 20) and print n!.",
        "c",
        "#include <stdio.h>\nlong f(long n) { if (n == 1) return 1; return n * f(n - 1); }\n"
        'int main(void) {\n  long n;\n  scanf("%ld", &n);\n  printf("%ld\\n", f(n));\n'
        "  return 0;\n}\n",
        (_io("five", "5\n", "120\n"), _io("zero", "0\n", "1\n")),
        frozenset({"zero"}),
        "the recursion has no base case for 0",
        (r"base case", r"n == ?0", r"n <= ?1", r"(infinite|unbounded|endless) recursion", r"stack"),
    ),
    Case(
        "cpp_at_past_the_end",
        "Read n, then n integers; print their sum.",
        "cpp",
        "#include <iostream>\n#include <vector>\nint main() {\n  int n; std::cin >> n;\n"
        "  std::vector<long> v(n);\n  for (auto& x : v) std::cin >> x;\n  long s = 0;\n"
        "  for (int i = 0; i <= n; i++) s += v.at(i);\n  std::cout << s << '\\n';\n}\n",
        (_io("three", "3\n1 2 3\n", "6\n"), _io("one", "1\n5\n", "5\n")),
        frozenset({"three", "one"}),
        "the loop reads one element past the end",
        (*OFF_BY_ONE, r"out.of.range", r"<= ?n", r"past the end", r"\bbounds?\b"),
    ),
    Case(
        "cpp_sorts_ascending",
        "Read n, then n integers; print them from largest to smallest.",
        "cpp",
        "#include <algorithm>\n#include <iostream>\n#include <vector>\nint main() {\n"
        "  int n; std::cin >> n;\n  std::vector<int> v(n);\n  for (auto& x : v) std::cin >> x;\n"
        "  std::sort(v.begin(), v.end(), [](int a, int b) { return a < b; });\n"
        "  for (int i = 0; i < n; i++) std::cout << v[i] << (i + 1 < n ? ' ' : '\\n');\n}\n",
        (_io("single", "1\n5\n", "5\n"), _io("three", "3\n1 3 2\n", "3 2 1\n")),
        frozenset({"three"}),
        "the comparator sorts ascending, not descending",
        (r"descend", r"ascend", r"a > b", r"greater", r"revers"),
    ),
    Case(
        "cpp_vowels_lowercase_only",
        "Read a word and print how many vowels it has (a, e, i, o, u, in any case).",
        "cpp",
        "#include <iostream>\n#include <string>\nint main() {\n  std::string s; std::cin >> s;\n"
        '  int c = 0;\n  for (char ch : s) if (std::string("aeiou").find(ch) != std::string::npos)'
        " c++;\n  std::cout << c << '\\n';\n}\n",
        (_io("lower", "banana\n", "3\n"), _io("capital", "Apple\n", "2\n")),
        frozenset({"capital"}),
        "capital vowels are not counted",
        (r"upper", r"capital", r"\bcase\b", r"tolower"),
    ),
    Case(
        "cpp_pairs_quadratic",
        "Read n and k, then n digits; print how many pairs of positions hold two different "
        "digits summing to k. n is up to 200,000.",
        "cpp",
        "#include <iostream>\n#include <vector>\nint main() {\n  int n, k; std::cin >> n >> k;\n"
        "  std::vector<int> v(n);\n  for (auto& x : v) std::cin >> x;\n  long long c = 0;\n"
        "  for (int i = 0; i < n; i++)\n    for (int j = i + 1; j < n; j++)\n"
        "      if (v[i] + v[j] == k && v[i] < v[j]) c++;\n  std::cout << c << '\\n';\n}\n",
        (
            _io("small", _pairs_input(10), _pairs_expected(10)),
            _io("large", _pairs_input(150_000), _pairs_expected(150_000)),
        ),
        frozenset({"large"}),
        "the nested loops are quadratic: too slow for large inputs",
        (
            r"quadratic",
            r"O\(n\^?2\)|O\(n²\)",
            r"nested loop",
            r"too slow",
            r"count(s|ing)? of each",
        ),
        time_limit_ms=1000,
    ),
    Case(
        "java_substring_end_exclusive",
        "Read a word and k; print its first k characters.",
        "java",
        "import java.util.Scanner;\npublic class Main {\n  public static void main(String[] a) {\n"
        "    Scanner in = new Scanner(System.in);\n    String s = in.next();\n"
        "    int k = in.nextInt();\n    System.out.println(s.substring(0, k - 1));\n  }\n}\n",
        (_io("three", "hello 3\n", "hel\n"), _io("all", "abc 3\n", "abc\n")),
        frozenset({"three", "all"}),
        "substring's end index is exclusive: k - 1 drops a character",
        (*OFF_BY_ONE, r"substring\(0, ?k\)", r"k ?- ?1"),
    ),
    Case(
        "java_factorial_overflows_int",
        "Read n (0 to 20) and print n!.",
        "java",
        "import java.util.Scanner;\npublic class Main {\n  public static void main(String[] a) {\n"
        "    int n = new Scanner(System.in).nextInt();\n    int f = 1;\n"
        "    for (int i = 2; i <= n; i++) f *= i;\n    System.out.println(f);\n  }\n}\n",
        (_io("five", "5\n", "120\n"), _io("thirteen", "13\n", "6227020800\n")),
        frozenset({"thirteen"}),
        "13! overflows an int",
        (*OVERFLOW, r"BigInteger"),
    ),
    Case(
        "java_strings_compared_by_reference",
        "Read two words; print same if they are equal, else different.",
        "java",
        "import java.util.Scanner;\npublic class Main {\n  public static void main(String[] a) {\n"
        "    Scanner in = new Scanner(System.in);\n    String x = in.next(), y = in.next();\n"
        '    System.out.println(x == y ? "same" : "different");\n  }\n}\n',
        (_io("different", "abc abd\n", "different\n"), _io("same", "abc abc\n", "same\n")),
        frozenset({"same"}),
        "== compares references, not contents",
        (r"\.equals", r"reference", r"identity", r"same object"),
    ),
    Case(
        "java_index_past_length",
        "Read n, then n integers; print their sum.",
        "java",
        "import java.util.Scanner;\npublic class Main {\n  public static void main(String[] a) {\n"
        "    Scanner in = new Scanner(System.in);\n    int n = in.nextInt();\n"
        "    int[] xs = new int[n];\n    for (int i = 0; i < n; i++) xs[i] = in.nextInt();\n"
        "    int s = 0;\n    for (int i = 0; i <= xs.length; i++) s += xs[i];\n"
        "    System.out.println(s);\n  }\n}\n",
        (_io("three", "3\n1 2 3\n", "6\n"), _io("one", "1\n4\n", "4\n", hidden=True)),
        frozenset({"three", "one"}),
        "the loop runs to xs.length inclusive",
        (*OFF_BY_ONE, r"ArrayIndexOutOfBounds", r"out of bounds", r"<= ?xs\.length"),
    ),
    Case(
        "js_adds_strings",
        "Read two integers and print their sum.",
        "javascript",
        "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/);\n"
        "console.log(a + b);\n",
        (_io("small", "1 2\n", "3\n"), _io("zero", "0 0\n", "0\n")),
        frozenset({"small", "zero"}),
        "the numbers are concatenated as strings",
        (r"string", r"concaten", r"parseInt|parseFloat|Number\(", r"convert"),
    ),
    Case(
        "js_loop_stops_before_n",
        "Read n and print the numbers 1 to n, one per line.",
        "javascript",
        "const n = Number(require('fs').readFileSync(0, 'utf8'));\n"
        "for (let i = 1; i < n; i++) console.log(i);\n",
        (_io("three", "3\n", "1\n2\n3\n"), _io("one", "1\n", "1\n")),
        frozenset({"three", "one"}),
        "i < n stops before printing n",
        (*OFF_BY_ONE, r"i <= ?n"),
    ),
    Case(
        "js_sort_is_lexicographic",
        "Read integers on one line and print them in increasing order.",
        "javascript",
        "const xs = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
        "console.log(xs.sort().join(' '));\n",
        (_io("digits", "3 1 2\n", "1 2 3\n"), _io("tens", "10 9 2\n", "2 9 10\n")),
        frozenset({"tens"}),
        "sort() without a comparator compares as strings",
        (r"lexicograph", r"as strings", r"comparator", r"a ?- ?b", r"numeric"),
    ),
    Case(
        "js_max_of_nothing",
        "Read integers on one line and print the largest, or none when there are none.",
        "javascript",
        "const xs = require('fs').readFileSync(0, 'utf8').split(/\\s+/).filter(Boolean)"
        ".map(Number);\nconsole.log(Math.max(...xs));\n",
        (_io("some", "3 1\n", "3\n"), _io("empty", "\n", "none\n")),
        frozenset({"empty"}),
        "an empty input prints -Infinity instead of none",
        (r"empty", r"infinity", r"no numbers", r"length"),
    ),
)
