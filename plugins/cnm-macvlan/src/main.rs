//! `cnm-macvlan`: a CNI plugin; everything is in `cnm_core`.

fn main() {
    cnm_core::cni::main(cnm_core::plugins::macvlan::MacvlanPlugin)
}
