"""Build once, run every test in the sandbox, judge, score.

Trust zone: trusted code in the runner process. It holds the expected answers and never
hands them to the sandbox (a test's input is all a program receives), and it reads what a
program printed only to compare it. The score comes from execution alone; nothing here
reads what the program or the LLM says about itself.
"""
