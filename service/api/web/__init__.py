"""The browser page served at ``/`` (plain HTML, CSS and ES modules; no build step, no CDN)."""
