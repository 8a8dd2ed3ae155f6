"""The grading bundle: everything the runner needs to grade one submission, written by the
webapp to Redis under `submission:<id>` and read once by the runner. Only the trusted
runner process reads the expected answers; the sandboxed program receives a test's input."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from runner_image.contract.states import Compare

BUNDLE_KEY = "submission:{id}"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_IO_CHARS = 1024 * 1024


def bundle_key(submission_id: object, grading_round: int = 0) -> str:
    """Round 0 (the first grading) is the seed's `submission:<id>`; each regrade round has a
    bundle of its own, `submission:<id>:r<n>`, so a late runner of an earlier round never
    reads (or grades) a newer round's tests."""
    key = BUNDLE_KEY.format(id=submission_id)
    return key if grading_round == 0 else f"{key}:r{grading_round}"


class BundleMissing(RuntimeError):
    """The bundle expired or was never written: the submission cannot be graded."""


class TestCase(BaseModel):
    """An `io` test (stdin in, stdout compared) or, when `call` is set, a Python `call` test
    whose returned value is compared with `expected`."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(frozen=True)

    name: Name
    stdin: str = Field(default="", max_length=MAX_IO_CHARS)
    expected_stdout: str = Field(default="", max_length=MAX_IO_CHARS)
    call: str | None = Field(default=None, min_length=1, max_length=10_000)
    expected: Any = None
    hidden: bool = False
    weight: float = Field(default=1.0, gt=0, le=1000)
    compare: Compare = Compare.LINES
    tolerance: float = Field(default=1e-6, ge=0)


def tag_key(tag: str) -> str:
    """A tag as the runner compares it: trimmed, lower case."""
    return tag.strip().lower()


class FeedbackSettings(BaseModel):
    """How an assignment wants its feedback: LLM or not, a rubric and its share of the score
    (above 0.3 the score is provisional until staff review it; 1.0 grades by the rubric
    alone), and tags of its own the LLM may use besides the built-in ones. `tag_tests` links
    an own tag to the tests that show it: the tag is kept only when one of them fails."""

    model_config = ConfigDict(frozen=True)

    llm: bool = True
    rubric: str | None = Field(default=None, max_length=20_000)
    rubric_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    tags: list[str] = Field(default_factory=list, max_length=20)
    tag_tests: dict[str, list[Name]] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="after")
    def _links_name_own_tags(self) -> FeedbackSettings:
        own = {tag_key(tag) for tag in self.tags}
        unknown = sorted(tag for tag in self.tag_tests if tag_key(tag) not in own)
        if unknown:
            raise ValueError(f"tag_tests links tags that are not in tags: {', '.join(unknown)}")
        if any(len(names) > 200 for names in self.tag_tests.values()):
            raise ValueError("tag_tests links a tag to more than 200 tests")
        return self

    def linked_tests(self) -> dict[str, set[str]]:
        """Each linked own tag (as `tag_key` spells it) and the names of its tests."""
        links: dict[str, set[str]] = {}
        for tag, names in self.tag_tests.items():
            links.setdefault(tag_key(tag), set()).update(names)
        return links


class AssignmentText(BaseModel):
    """What the student was asked: the LLM explains against it."""

    model_config = ConfigDict(frozen=True)

    title: str = ""
    description: str = ""


class Bundle(BaseModel):
    model_config = ConfigDict(frozen=True)

    submission_id: str
    assignment_id: str = ""
    language: str
    code: str
    tests: tuple[TestCase, ...]
    time_limit_ms: int = 2000
    memory_limit_mb: int = 256
    max_score: float = 100.0
    feedback: FeedbackSettings = FeedbackSettings()
    assignment: AssignmentText = AssignmentText()
    # The grading round (0: first grading; one more per regrade).
    round: int = Field(default=0, ge=0)
