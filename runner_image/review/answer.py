"""What the model must answer: the JSON schema sent as `response_format` and the pydantic
models that validate the answer (the bounds live in the models; servers differ in which
schema keywords they accept)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_FEEDBACK_CHARS = 8000
MAX_EXPLANATION_CHARS = 2000
MAX_EXPLANATIONS = 64
MAX_TAGS = 16
FeedbackText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FEEDBACK_CHARS)
]


class TestExplanation(BaseModel):
    """Why one failing test fails, keyed by the test's name: each claim is tied to a test
    that ran, and an explanation of a test that did not fail is dropped."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(extra="forbid", strict=True)

    test: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    explanation: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_EXPLANATION_CHARS),
    ]


class FeedbackAnswer(BaseModel):
    """The model's answer when the assignment gives the rubric no weight: general feedback,
    an explanation per failing test, and tags."""

    model_config = ConfigDict(extra="forbid", strict=True)

    feedback: FeedbackText
    explanations: list[TestExplanation] = Field(max_length=MAX_EXPLANATIONS)
    fail_tags: list[str] = Field(max_length=MAX_TAGS)

    @property
    def texts(self) -> list[str]:
        """Every text of the answer a reader could see."""
        return [self.feedback, *(e.explanation for e in self.explanations)]


class RubricFeedbackAnswer(FeedbackAnswer):
    """The model's answer when the rubric carries a weight: also a quality score in [0, 1]."""

    rubric_score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


def response_format(
    tags: list[str], with_rubric: bool, failing_tests: list[str] | None = None
) -> dict[str, Any]:
    """The Chat Completions `response_format`: a strict JSON schema. Only keywords every
    structured-output server accepts; the bounds are enforced by the pydantic models. The
    names of the failing tests, when there are any, are the only test names allowed."""
    test_name: dict[str, Any] = {
        "type": "string",
        "description": "The failing test's name, exactly as given.",
    }
    if failing_tests:
        test_name["enum"] = list(failing_tests)
    properties: dict[str, Any] = {
        "feedback": {
            "type": "string",
            "description": "Markdown feedback for the student about the code as a whole.",
        },
        "explanations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "test": test_name,
                    "explanation": {
                        "type": "string",
                        "description": "Why this test fails and where in the code; Markdown.",
                    },
                },
                "required": ["test", "explanation"],
                "additionalProperties": False,
            },
            "description": "One entry per failing test; empty when every test passed.",
        },
        "fail_tags": {
            "type": "array",
            "items": {"type": "string", "enum": list(tags)},
            "description": "Tags for the problems seen in the code; may be empty.",
        },
    }
    if with_rubric:
        properties["rubric_score"] = {
            "type": "number",
            "description": "How well the code meets the rubric, from 0 to 1.",
        }
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "cloudemy_feedback",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


def parse_answer(content: str, with_rubric: bool) -> FeedbackAnswer:
    """Validate the model's message against the schema; raises pydantic.ValidationError.
    A single surrounding ``` fence, which some local servers add, is tolerated."""
    text = content.strip()
    fenced = re.fullmatch(r"```[a-zA-Z]*\n(.*)\n```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    model = RubricFeedbackAnswer if with_rubric else FeedbackAnswer
    return model.model_validate_json(text)
