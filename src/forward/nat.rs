//! NAT (IPVS "masquerading").
