"""Running untrusted code: one process per build or test, with the isolation layers this
machine supports, limits, a deadline and an output cap.

Trust zone: what runs under this package's control is hostile. It receives the test's
input and a fresh working directory, nothing else: no expected answer, no environment of
the runner (no token, no key), no other test's files. Code here never trusts what the
sandboxed process wrote; the caller gets bytes and numbers back.
"""
