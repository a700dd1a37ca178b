"""The declarative workflow language: YAML files validated by pydantic models.

Pure: it imports neither Celery nor Playwright. ``bots`` executes what this package describes.
"""

import lazy_loader as lazy

# The names are listed in __init__.pyi and each is imported on first use, so a command loads only what it uses
# (``autoclerk status`` never loads Playwright or Celery).
__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
