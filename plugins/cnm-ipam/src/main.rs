//! `cnm-ipam`: a CNI IPAM plugin; everything is in `cnm_core`.

fn main() {
    cnm_core::cni::main(cnm_core::plugins::ipam::IpamPlugin)
}
