use session_core::{Entity, update};

#[derive(Debug, Clone, Entity)]
struct Item {
    #[entity(primary_key)]
    id: i32,
    name: String,
    stock: i32,
}

fn main() {
    // Text does not subtract, and a number is not text.
    let _ = update::<Item>().set_expr(Item::C.name, Item::C.name - 1);
    let _ = update::<Item>().set_expr(Item::C.stock, Item::C.name);
    // `@>` needs jsonb or an array.
    let _ = Item::C.stock.contains(3);
}
