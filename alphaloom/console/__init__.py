"""The operator console: live web pages over the audit trail (Now, Decisions, Risk, Runs, Actions).

``app.create_app`` builds the FastAPI app; ``auth`` holds login, sessions and CSRF; ``queries`` reads what pages
show; ``charts`` draws inline SVG; ``actions`` changes state (kill switch, arm/disarm, trigger a decision run), each
change recorded in ``audit.console_actions``. Static assets are vendored under ``static/`` (no CDN).
"""
