"""The label store (SQLModel tables, engine, repository functions): the only SQL in the project."""
