"""Dev tooling, apart from the shipped services: `cloudemy dev`, `cloudemy demo` and the
test suites start the whole stack on one machine with it. Its dependencies (mongomock,
fakeredis) come with the `dev` extra, and the production images leave this package out
(.dockerignore). Nothing under webapp/, tasks/ or runner_image/ imports it, except the
`cloudemy dev` and `cloudemy demo` commands, which load it when they run."""
