"""The Cloudemy backend. The app factory is `webapp.app.create_app`; importing this package
imports nothing else, so the `cloudemy` command checks its settings (and a busy port)
before it pays for Flask and the blueprints."""
