"""Business rules as pure functions over frozen dataclasses: no Django import here."""
