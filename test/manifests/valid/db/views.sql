CREATE OR REPLACE VIEW item_titles AS SELECT title FROM items;
