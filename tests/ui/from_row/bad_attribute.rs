#[derive(session_core::FromRow)]
struct Line {
    #[row(column = "sku_code")]
    sku: String,
    #[row(rename = "a", rename = "b")]
    stock: i32,
    #[row(rename = 5)]
    price: i64,
    #[row(rename = "")]
    note: Option<String>,
}

fn main() {}
