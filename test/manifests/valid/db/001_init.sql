CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, title text NOT NULL);
