//! Every GraphQL document the connector sends, in one place so a test can validate each
//! against the real Admin schema (`tests/schema.rs`, API version 2025-01).
//!
//! Cost planning: the simulator and Shopify charge a connection `2 + first × (per-node cost)`,
//! so page sizes here are chosen to keep each query's *requested* cost under 1,000 and the
//! client computes the requested cost of a page with [`crate::client::products_page_cost`].

/// The fields read of one product, shared by listing and single reads.
macro_rules! product_fields {
    () => {
        "fragment ProductFields on Product {
  id legacyResourceId handle title status vendor productType tags updatedAt createdAt descriptionHtml
  options { name position }
  media(first: $mediaFirst) {
    pageInfo { hasNextPage endCursor }
    nodes { id alt mediaContentType status ... on MediaImage { image { url width height } } }
  }
  variants(first: $variantsFirst) {
    pageInfo { hasNextPage endCursor }
    nodes { ...VariantFields }
  }
}
fragment VariantFields on ProductVariant {
  id title sku barcode price compareAtPrice position updatedAt inventoryQuantity
  selectedOptions { name value }
  image { url }
  inventoryItem { id tracked measurement { weight { unit value } } }
}
"
    };
}

/// Variants of one product, per node: the variant (1) + `selectedOptions` (1) + `image` (1) +
/// `inventoryItem` (1) + `measurement` (1) + `weight` (1).
pub const VARIANT_NODE_COST: u32 = 6;
/// Media, per node: the media (1) + `image` (1).
pub const MEDIA_NODE_COST: u32 = 2;
/// Per product, beyond its connections: the product (1) + `options` (1).
pub const PRODUCT_OWN_COST: u32 = 2;

/// A page of products in `updatedAt` order, optionally filtered (`updated_at:>='…'`).
pub const PRODUCTS_PAGE: &str = concat!(
    "query ProductsPage($first: Int!, $after: String, $query: String, $mediaFirst: Int!, $variantsFirst: Int!) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...ProductFields }
  }
}
",
    product_fields!()
);

/// One product by id (`null` when it does not exist).
pub const PRODUCT_BY_ID: &str = concat!(
    "query ProductById($id: ID!, $mediaFirst: Int!, $variantsFirst: Int!) {
  product(id: $id) { ...ProductFields }
}
",
    product_fields!()
);

/// How many products the shop has, up to `limit` (`precision: AT_LEAST` above it).
pub const PRODUCTS_COUNT: &str = "query ProductsCount($limit: Int) {
  productsCount(limit: $limit) { count precision }
}
";

/// Starts a bulk query (the inner document is [`BULK_PRODUCTS`]); one runs at a time.
pub const BULK_RUN_QUERY: &str = "mutation BulkRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
";

/// A bulk operation's state, polled until it ends.
pub const BULK_OPERATION: &str = "query BulkOperation($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount rootObjectCount url partialDataUrl }
  }
}
";

/// The inner query of a bulk full scan: every product with the fields of
/// [`PRODUCTS_PAGE`] (same record), its variants and media as their own JSONL lines
/// (`__parentId`). Bulk connections take no `first`.
pub const BULK_PRODUCTS: &str = "{
  products {
    edges {
      node {
        id legacyResourceId handle title status vendor productType tags updatedAt createdAt descriptionHtml
        options { name position }
        media {
          edges {
            node { id alt mediaContentType status ... on MediaImage { image { url width height } } }
          }
        }
        variants {
          edges {
            node {
              id title sku barcode price compareAtPrice position updatedAt inventoryQuantity
              selectedOptions { name value }
              image { url }
              inventoryItem { id tracked measurement { weight { unit value } } }
            }
          }
        }
      }
    }
  }
}
";

/// The variants of one product after the first page.
pub const PRODUCT_VARIANTS_PAGE: &str =
    "query ProductVariantsPage($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    id
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...VariantFields }
    }
  }
}
fragment VariantFields on ProductVariant {
  id title sku barcode price compareAtPrice position updatedAt inventoryQuantity
  selectedOptions { name value }
  image { url }
  inventoryItem { id tracked measurement { weight { unit value } } }
}
";

/// The media of one product after the first page.
pub const PRODUCT_MEDIA_PAGE: &str =
    "query ProductMediaPage($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    id
    media(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id alt mediaContentType status ... on MediaImage { image { url width height } } }
    }
  }
}
";

/// Variants by SKU (`sku:'…'`), with their product's id.
pub const VARIANTS_BY_SKU: &str = "query VariantsBySku($query: String!) {
  productVariants(first: 5, query: $query) {
    nodes { id sku product { id } }
  }
}
";

/// The id of the product with a handle (primary store: no search-index lag).
pub const PRODUCT_BY_HANDLE: &str = "query ProductByHandle($handle: String!) {
  productByHandle(handle: $handle) { id }
}
";

/// The shop's primary location, where stock moves are applied.
pub const PRIMARY_LOCATION: &str = "query PrimaryLocation {
  location { id }
}
";

/// The current `available` quantities of some inventory items (at most 250) at one location,
/// read right before a compare-and-set.
pub const INVENTORY_LEVELS: &str = "query InventoryLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) { quantities(names: [\"available\"]) { name quantity } }
    }
  }
}
";

/// A page of orders in `updatedAt` order.
pub const ORDERS_PAGE: &str = "query OrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...OrderFields }
  }
}
fragment OrderFields on Order {
  id legacyResourceId name createdAt updatedAt cancelledAt email note
  displayFinancialStatus displayFulfillmentStatus currencyCode
  customer { firstName lastName email phone }
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalShippingPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  shippingAddress { address1 address2 city province zip country }
  lineItems(first: 50) {
    pageInfo { hasNextPage endCursor }
    nodes { id sku title quantity variant { id } originalUnitPriceSet { shopMoney { amount currencyCode } } }
  }
  fulfillments(first: 10) { status displayStatus trackingInfo(first: 5) { company number } }
}
";

/// One order by id.
pub const ORDER_BY_ID: &str = "query OrderById($id: ID!) {
  order(id: $id) { ...OrderFields }
}
fragment OrderFields on Order {
  id legacyResourceId name createdAt updatedAt cancelledAt email note
  displayFinancialStatus displayFulfillmentStatus currencyCode
  customer { firstName lastName email phone }
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalShippingPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  shippingAddress { address1 address2 city province zip country }
  lineItems(first: 50) {
    pageInfo { hasNextPage endCursor }
    nodes { id sku title quantity variant { id } originalUnitPriceSet { shopMoney { amount currencyCode } } }
  }
  fulfillments(first: 10) { status displayStatus trackingInfo(first: 5) { company number } }
}
";

/// Line items of one order after the first page.
pub const ORDER_LINE_ITEMS_PAGE: &str =
    "query OrderLineItemsPage($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id sku title quantity variant { id } originalUnitPriceSet { shopMoney { amount currencyCode } } }
    }
  }
}
";

/// Requested cost of a line item node: the item (1) + `variant` (1) + the price set (2).
pub const LINE_ITEM_NODE_COST: u32 = 4;

/// The product (and variant) of an inventory item (`inventory_levels/update` webhooks).
pub const INVENTORY_ITEM_PRODUCT: &str = "query InventoryItemProduct($id: ID!) {
  inventoryItem(id: $id) { id variant { id product { id } } }
}
";

/// Creates or updates a whole product (list fields replace: variants left out are deleted).
pub const PRODUCT_SET: &str = concat!(
    "mutation ProductSet($input: ProductSetInput!, $mediaFirst: Int!, $variantsFirst: Int!) {
  productSet(input: $input, synchronous: true) {
    product { ...ProductFields }
    userErrors { field message code }
  }
}
",
    product_fields!()
);

/// Updates existing variants' prices, SKUs and barcodes.
pub const PRODUCT_VARIANTS_BULK_UPDATE: &str = "mutation ProductVariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants, allowPartialUpdates: false) {
    productVariants { id }
    userErrors { field message code }
  }
}
";

/// Sets `available` quantities at a location, compare-and-set: each carries the quantity read
/// just before (`compareQuantity`); a sale landing in between answers
/// `COMPARE_QUANTITY_STALE` and nothing is set.
pub const INVENTORY_SET_QUANTITIES: &str =
    "mutation InventorySetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { field message code }
  }
}
";

/// The processing state of one product's media (after a write added some): `status` and,
/// for FAILED media, why.
pub const PRODUCT_MEDIA_STATUS: &str = "query ProductMediaStatus($id: ID!, $first: Int!) {
  product(id: $id) {
    id
    media(first: $first) {
      nodes { id status mediaErrors { code message details } }
    }
  }
}
";

/// Requested cost of a media status node: the media (1) + `mediaErrors` (1).
pub const MEDIA_STATUS_NODE_COST: u32 = 2;

/// Detaches images from a product (the file itself stays in the shop's files).
pub const FILE_UPDATE: &str = "mutation FileUpdate($files: [FileUpdateInput!]!) {
  fileUpdate(files: $files) {
    files { id }
    userErrors { field message code }
  }
}
";

/// Every document, with a name, for the schema test.
pub const ALL: &[(&str, &str)] = &[
    ("PRODUCTS_COUNT", PRODUCTS_COUNT),
    ("BULK_RUN_QUERY", BULK_RUN_QUERY),
    ("BULK_OPERATION", BULK_OPERATION),
    ("BULK_PRODUCTS", BULK_PRODUCTS),
    ("PRODUCTS_PAGE", PRODUCTS_PAGE),
    ("PRODUCT_BY_ID", PRODUCT_BY_ID),
    ("PRODUCT_VARIANTS_PAGE", PRODUCT_VARIANTS_PAGE),
    ("PRODUCT_MEDIA_PAGE", PRODUCT_MEDIA_PAGE),
    ("VARIANTS_BY_SKU", VARIANTS_BY_SKU),
    ("PRODUCT_BY_HANDLE", PRODUCT_BY_HANDLE),
    ("PRIMARY_LOCATION", PRIMARY_LOCATION),
    ("INVENTORY_LEVELS", INVENTORY_LEVELS),
    ("ORDERS_PAGE", ORDERS_PAGE),
    ("ORDER_BY_ID", ORDER_BY_ID),
    ("ORDER_LINE_ITEMS_PAGE", ORDER_LINE_ITEMS_PAGE),
    ("INVENTORY_ITEM_PRODUCT", INVENTORY_ITEM_PRODUCT),
    ("PRODUCT_SET", PRODUCT_SET),
    ("PRODUCT_VARIANTS_BULK_UPDATE", PRODUCT_VARIANTS_BULK_UPDATE),
    ("INVENTORY_SET_QUANTITIES", INVENTORY_SET_QUANTITIES),
    ("PRODUCT_MEDIA_STATUS", PRODUCT_MEDIA_STATUS),
    ("FILE_UPDATE", FILE_UPDATE),
];
