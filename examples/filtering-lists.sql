-- Tables for examples/filtering-lists.sh: how a shop might store orders and products, mapped in
-- examples/legate.toml's [plan.tables]. Entity references are ids (text); a set is text[].
DROP TABLE IF EXISTS orders, products;
CREATE TABLE orders (
  id              text PRIMARY KEY,
  owner_id        text NOT NULL,          -- Order.owner: Customer
  legal_entity_id text,                   -- Order.legalEntity?: LegalEntity (NULL = absent)
  status          text                    -- Order.status?: String
);
CREATE INDEX ON orders (owner_id);
CREATE INDEX ON orders (legal_entity_id);
CREATE TABLE products (
  id          text PRIMARY KEY,
  segment_ids text[] NOT NULL             -- Product.segments: Set<Segment> (empty = public)
);
INSERT INTO orders VALUES
  ('O-1', 'C-1', 'LE-1', 'open'),         -- C-1's own, for LE-1
  ('O-2', 'C-2', 'LE-1', 'shipped'),      -- a colleague's, for LE-1
  ('O-3', 'C-2', 'LE-3', NULL),           -- another entity's
  ('O-4', 'C-1', NULL, 'open'),           -- C-1's own, no entity
  ('O-5', 'C-3', 'LE-2', 'open');         -- LE-2's
INSERT INTO products VALUES
  ('P-1', '{}'),                          -- public
  ('P-2', '{wholesale}'),
  ('P-3', '{retail}'),
  ('P-4', '{wholesale,retail}');
