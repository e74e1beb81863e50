"""The label store (SQLModel tables, engine, repository functions): the only SQL in the project.

engine.py (get_engine, init_db, sessions) · models.py (tables) · users.py · importer.py ·
queue.py · reviews.py · exports.py. Build one engine per process with get_engine() and call
init_db() once at start-up; every repository function takes that engine, opens its own short
transaction and returns plain dataclasses, so a UI handler never holds a session.
"""
