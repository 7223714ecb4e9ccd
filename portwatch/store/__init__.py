"""The only code that touches sqlite3: schema, migrations, history writer and reader."""
