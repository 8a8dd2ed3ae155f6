"""The demo instructor, student and assignment that `cloudemy dev` and `make demo` use: the
assignment is in the instructor's default course, where the student is enrolled."""

from __future__ import annotations

from runner_image.contract import FeedbackSettings, TestCase
from webapp.courses import default_course, enrol
from webapp.models import Assignment, User
from webapp.security import hash_password

DEMO_INSTRUCTOR = {
    "email": "instructor@demo.cloudemy",
    "name": "Ada Instructor",
    "password": "demo-instructor",
}
DEMO_STUDENT = {"email": "student@demo.cloudemy", "name": "Sam Student", "password": "demo-student"}
DEMO_ASSIGNMENT_TITLE = "Sum of a list"

SOLUTIONS = {
    "correct": "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()[1:]))\n",
    "wrong": (
        "import sys\nnums = [int(x) for x in sys.stdin.read().split()[1:]]\nprint(sum(nums[:-1]))\n"
    ),
    "too_slow": "import sys\nnums = sys.stdin.read().split()\nwhile True:\n    pass\n",
}


def _user(spec: dict[str, str], role: str) -> User:
    user = User.objects(email=spec["email"]).first()
    if user is None:
        user = User(
            email=spec["email"],
            name=spec["name"],
            role=role,
            password_hash=hash_password(spec["password"]),
        )
        user.save()
    return user


def seed_demo_data() -> Assignment:
    instructor = _user(DEMO_INSTRUCTOR, "instructor")
    student = _user(DEMO_STUDENT, "student")
    course = default_course(instructor)
    enrol(course.id, student.id)
    existing = Assignment.objects(title=DEMO_ASSIGNMENT_TITLE, owner_id=instructor.id).first()
    if existing:
        return existing
    assignment = Assignment(
        owner_id=instructor.id,
        course_id=course.id,
        time_limit_ms=1000,
        memory_limit_mb=256,
        max_score=100,
        title=DEMO_ASSIGNMENT_TITLE,
        description="The first line holds `n`, the second `n` integers. Print their sum.",
        language="python",
        starter_code="import sys\n\n# read n, then n integers, and print their sum\n",
    )
    assignment.test_cases = [
        TestCase(name="single zero", stdin="1\n0\n", expected_stdout="0\n"),
        TestCase(name="three numbers", stdin="3\n1 2 3\n", expected_stdout="6\n"),
        TestCase(name="negatives", stdin="4\n-5 10 -2 7\n", expected_stdout="10\n"),
        TestCase(
            name="large",
            stdin="5\n1000000 2000000 3000000 4000000 5\n",
            expected_stdout="10000005\n",
            hidden=True,
        ),
    ]
    assignment.feedback_settings = FeedbackSettings(llm=True)
    assignment.save()
    return assignment
