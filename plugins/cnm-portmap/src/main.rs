//! `cnm-portmap`: a CNI plugin; everything is in `cnm_core`.

fn main() {
    cnm_core::cni::main(cnm_core::portmap::plugin::PortMapPlugin)
}
