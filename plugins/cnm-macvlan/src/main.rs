//! `cnm-macvlan`: a CNI plugin; everything is in `cnm_core`.

#[global_allocator]
static ALLOC: cnm_core::alloc::OneShot = cnm_core::alloc::OneShot::new();

fn main() {
    cnm_core::cni::main(cnm_core::plugins::macvlan::MacvlanPlugin)
}
