"""The step after the tests: feedback for the student, by an LLM when one is configured.

Trust zone: this code sees the student's code, the public tests and every test's verdict,
and sends part of that to a model outside. It never sees a hidden test's input or expected
output in a prompt (hidden tests are a name and a verdict), and what comes back is filtered
(hidden-test and rubric quotes, markup) before anyone reads it. It cannot change the tests'
score: `grading.score` owns the score, and the rubric's share is capped there.
"""
