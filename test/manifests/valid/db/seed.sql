INSERT INTO items (title) SELECT 'first' WHERE NOT EXISTS (SELECT 1 FROM items WHERE title = 'first');
