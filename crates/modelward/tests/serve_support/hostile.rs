//! Hostile uploads made on the fly: zip bombs, size claims of 2^60 bytes, a zip of 10,000
//! members, truncated files, things that are no model at all.

use std::io::Write;

/// A zip of deflated members, each `(name, data, claimed uncompressed size)`; a claim above
/// u32 goes in a zip64 extra field.
pub fn deflate_zip(members: &[(String, Vec<u8>, Option<u64>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, claim) in members {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        let packed = enc.finish().unwrap();
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let usize_ = claim.unwrap_or(data.len() as u64);
        let zip64 = usize_ > u32::MAX as u64;
        let mut extra = Vec::new();
        if zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&usize_.to_le_bytes());
            extra.extend_from_slice(&(packed.len() as u64).to_le_bytes());
        }
        let (u32s, c32s) = if zip64 {
            (u32::MAX, u32::MAX)
        } else {
            (usize_ as u32, packed.len() as u32)
        };
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&(if zip64 { 45u16 } else { 20u16 }).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&8u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0x21u16.to_le_bytes());
            v.extend_from_slice(&crc.sum().to_le_bytes());
            v.extend_from_slice(&c32s.to_le_bytes());
            v.extend_from_slice(&u32s.to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&extra);
        out.extend_from_slice(&packed);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&45u16.to_le_bytes());
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal
        central.extend_from_slice(&0u32.to_le_bytes()); // external
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&extra);
    }
    let cd_at = out.len() as u32;
    let n = members.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// 64 MiB of zeros deflated into one member (~64 KiB): a zip bomb, `salt` in its name.
pub fn zip_bomb(salt: usize) -> Vec<u8> {
    deflate_zip(&[(format!("archive/data-{salt}.pkl"), vec![0u8; 64 << 20], None)])
}

/// A member that claims 2^60 bytes (zip64), holding a few.
pub fn zip_claims_2_pow_60(salt: usize) -> Vec<u8> {
    deflate_zip(&[(
        format!("archive/data-{salt}.pkl"),
        b"\x80\x02}q\x00.".to_vec(),
        Some(1 << 60),
    )])
}

/// A safetensors header that says it is 2^60 bytes long.
pub fn safetensors_claims_2_pow_60(salt: usize) -> Vec<u8> {
    let mut v = (1u64 << 60).to_le_bytes().to_vec();
    v.extend_from_slice(format!("{{\"__metadata__\":{{\"salt\":\"{salt}\"}}").as_bytes());
    v
}

/// A zip of 12,000 small members: more members than the engine's default budget (10,000): the scan stops there and says so.
pub fn over_member_budget(salt: usize) -> Vec<u8> {
    many_members(salt, 12_000)
}

/// A zip of `n` small members.
pub fn many_members(salt: usize, n: usize) -> Vec<u8> {
    let members: Vec<_> = (0..n)
        .map(|i| (format!("m{salt}/{i}.txt"), format!("{i}").into_bytes(), None))
        .collect();
    deflate_zip(&members)
}

/// The first half of `bytes`.
pub fn truncated(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

/// Text that is no model.
pub fn not_a_model(salt: usize) -> Vec<u8> {
    format!("Dear diary, today I uploaded a spreadsheet ({salt}).\n")
        .repeat(200)
        .into_bytes()
}
