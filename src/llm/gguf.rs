//! A GGUF reader: metadata, tensor directory, and dequantization to `f32`.
//!
//! Why our own reader: the crates that parse GGUF (`gguf`, `gguf-rs-lib`) are small, young
//! projects that stop at the container and leave dequantization to the caller, and the
//! container itself is a few length-prefixed records. Owning it lets every failure name the
//! file and the offending record (truncated header, a tensor that runs past the end, an
//! unknown type), which is what a user needs when a download broke.
//!
//! The file is memory-mapped; tensors are dequantized one at a time on request, so peak memory
//! is the `f32` model plus one tensor. Supported tensor types: F32, F16, BF16, Q8_0, Q4_0,
//! Q4_1, Q4_K and Q6_K (the block layouts of ggml's `ggml-quants.c`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, if it is any integer type with a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// ggml tensor types this reader can dequantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl GgmlType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4K,
            14 => GgmlType::Q6K,
            30 => GgmlType::BF16,
            _ => return None,
        })
    }

    /// (elements per block, bytes per block)
    fn block(self) -> (usize, usize) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q4K => (256, 144),
            GgmlType::Q6K => (256, 210),
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Row-major shape (GGUF lists dimensions fastest-first; this is reversed).
    pub shape: Vec<usize>,
    pub dtype: GgmlType,
    /// Absolute byte offset of the data in the file.
    offset: usize,
    n_bytes: usize,
}

impl GgufTensorInfo {
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An open GGUF file.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: BTreeMap<String, GgufTensorInfo>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates the header and tensor directory (tensor data is read lazily).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).at(&path)?;
        // SAFETY: the map is read-only and private to this struct; a file truncated by another
        // process while mapped would fault, which is the same hazard every mmap reader accepts.
        let map = unsafe { Mmap::map(&file) }.at(&path)?;
        let (version, metadata, tensors) =
            parse(&map).map_err(|reason| Error::model_file(&path, reason))?;
        Ok(GgufFile {
            path,
            map,
            version,
            metadata,
            tensors,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// A required integer key, with an error naming the file and the key.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(GgufValue::as_u64)
            .ok_or_else(|| self.error(format!("metadata key `{key}` is missing or not an integer")))
    }

    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::model_file(&self.path, reason)
    }

    /// The embedded tokenizer (`tokenizer.ggml.*` keys) as plain data for
    /// [`Tokenizer::from_gguf_vocab`](crate::llm::tokenizer::Tokenizer::from_gguf_vocab).
    pub fn tokenizer_vocab(&self) -> Result<crate::llm::tokenizer::GgufVocab> {
        let strings = |key: &str| -> Result<Vec<String>> {
            match self.get(key) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| {
                        self.error(format!("metadata key `{key}` is not a list of strings"))
                    }),
            }
        };
        let numbers = |key: &str| -> Vec<f64> {
            self.get(key)
                .and_then(GgufValue::as_array)
                .map(|a| a.iter().filter_map(GgufValue::as_f64).collect())
                .unwrap_or_default()
        };
        let id = |key: &str| self.get(key).and_then(GgufValue::as_u64).map(|x| x as u32);
        let flag = |key: &str| self.get(key).and_then(GgufValue::as_bool);
        let model = self
            .get("tokenizer.ggml.model")
            .and_then(GgufValue::as_str)
            .ok_or_else(|| {
                self.error(
                    "metadata key `tokenizer.ggml.model` is missing: the file has no tokenizer",
                )
            })?;
        Ok(crate::llm::tokenizer::GgufVocab {
            model: model.to_string(),
            pre: self
                .get("tokenizer.ggml.pre")
                .and_then(GgufValue::as_str)
                .map(str::to_string),
            tokens: strings("tokenizer.ggml.tokens")?,
            scores: numbers("tokenizer.ggml.scores")
                .into_iter()
                .map(|x| x as f32)
                .collect(),
            token_types: numbers("tokenizer.ggml.token_type")
                .into_iter()
                .map(|x| x as i32)
                .collect(),
            merges: strings("tokenizer.ggml.merges")?,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            unk_id: id("tokenizer.ggml.unknown_token_id"),
            pad_id: id("tokenizer.ggml.padding_token_id"),
            add_bos: flag("tokenizer.ggml.add_bos_token"),
            add_eos: flag("tokenizer.ggml.add_eos_token"),
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix"),
        })
    }

    /// Dequantizes a tensor to `f32`, returning the data and its row-major shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| self.error(format!("tensor `{name}` not found")))?;
        let bytes = &self.map[info.offset..info.offset + info.n_bytes];
        let data = dequantize(info.dtype, bytes, info.num_elements())
            .map_err(|reason| self.error(format!("tensor `{name}`: {reason}")))?;
        Ok((data, info.shape.clone()))
    }
}

/// A bounds-checked little-endian cursor over the file bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated file: {what} needs {n} bytes at offset {} but the file has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length read from the file, checked against what the file could possibly hold.
    fn len(&mut self, what: &str, min_item_bytes: usize) -> std::result::Result<usize, String> {
        let n = self.u64(what)?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > remaining {
            return Err(format!(
                "truncated or corrupt file: {what} = {n} at offset {} cannot fit in the {remaining} bytes left",
                self.pos - 8
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let n = self.len(what, 1)?;
        let at = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| format!("corrupt file: {what} at offset {at} is not UTF-8"))
    }

    fn value(
        &mut self,
        ty: u32,
        key: &str,
        depth: usize,
    ) -> std::result::Result<GgufValue, String> {
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>(key)?[0]),
            1 => GgufValue::I8(self.array::<1>(key)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => GgufValue::U32(self.u32(key)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match self.array::<1>(key)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(format!("corrupt file: key `{key}` has bool byte {b}")),
            },
            8 => GgufValue::String(self.string(key)?),
            9 if depth == 0 => {
                let item_ty = self.u32(key)?;
                let n = self.len(key, 1)?;
                let items = (0..n)
                    .map(|_| self.value(item_ty, key, depth + 1))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(self.u64(key)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(key)?)),
            _ => {
                return Err(format!(
                    "corrupt file: key `{key}` has unknown value type {ty}"
                ));
            }
        })
    }
}

type Parsed = (
    u32,
    BTreeMap<String, GgufValue>,
    BTreeMap<String, GgufTensorInfo>,
);

fn parse(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c
        .take(4, "magic")
        .map_err(|_| "not a GGUF file (shorter than 4 bytes)".to_string())?;
    if magic != MAGIC {
        return Err(format!(
            "not a GGUF file (magic {magic:?}, expected \"GGUF\")"
        ));
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "unsupported GGUF version {version} (this reader handles 2 and 3)"
        ));
    }
    let n_tensors = c.len("tensor count", 24)?;
    let n_kv = c.len("metadata count", 12)?;

    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = c.string("metadata key")?;
        let ty = c.u32(&key)?;
        let value = c.value(ty, &key, 0)?;
        metadata.insert(key, value);
    }

    let mut infos = Vec::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let name = c.string("tensor name")?;
        let n_dims = c.u32(&name)? as usize;
        if n_dims == 0 || n_dims > 4 {
            return Err(format!(
                "corrupt file: tensor `{name}` has {n_dims} dimensions"
            ));
        }
        let mut shape = (0..n_dims)
            .map(|_| c.u64(&name).map(|d| d as usize))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        shape.reverse();
        let ty = c.u32(&name)?;
        let dtype = GgmlType::from_id(ty).ok_or_else(|| {
            format!("tensor `{name}` has ggml type {ty}, which recx cannot dequantize")
        })?;
        let offset = c.u64(&name)?;
        infos.push((name, shape, dtype, offset));
    }

    let alignment = metadata
        .get("general.alignment")
        .and_then(GgufValue::as_u64)
        .unwrap_or(DEFAULT_ALIGNMENT);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(format!("corrupt file: general.alignment = {alignment}"));
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;

    let mut tensors = BTreeMap::new();
    for (name, shape, dtype, offset) in infos {
        let n_elems = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("corrupt file: tensor `{name}` shape {shape:?} overflows"))?;
        let (block, block_bytes) = dtype.block();
        if !n_elems.is_multiple_of(block) {
            return Err(format!(
                "corrupt file: tensor `{name}` has {n_elems} elements, not a multiple of the {dtype:?} block size {block}"
            ));
        }
        let n_bytes = n_elems / block * block_bytes;
        let start = data_start.checked_add(offset).map(|s| s as usize);
        match start.and_then(|s| s.checked_add(n_bytes)) {
            Some(end) if end <= bytes.len() => {}
            _ => {
                return Err(format!(
                    "truncated file: tensor `{name}` ({n_bytes} bytes at data offset {offset}) runs past the end of the file ({} bytes)",
                    bytes.len()
                ));
            }
        }
        let info = GgufTensorInfo {
            name: name.clone(),
            shape,
            dtype,
            offset: start.unwrap(),
            n_bytes,
        };
        if tensors.insert(name.clone(), info).is_some() {
            return Err(format!("corrupt file: tensor `{name}` appears twice"));
        }
    }
    Ok((version, metadata, tensors))
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes `n` elements of type `ty` from `bytes` (whose length the caller has checked).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> std::result::Result<Vec<f32>, String> {
    let (block, block_bytes) = ty.block();
    if !n.is_multiple_of(block) || bytes.len() != n / block * block_bytes {
        return Err(format!(
            "{} bytes do not hold {n} {ty:?} elements",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(n);
    let blocks = bytes.chunks_exact(block_bytes);
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes(b.try_into().unwrap()))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => blocks.for_each(|b| {
            let d = f16_at(b, 0);
            out.extend(b[2..].iter().map(|&q| q as i8 as f32 * d));
        }),
        GgmlType::Q4_0 => blocks.for_each(|b| {
            let d = f16_at(b, 0);
            let qs = &b[2..];
            out.extend(qs.iter().map(|&q| ((q & 0xF) as i32 - 8) as f32 * d));
            out.extend(qs.iter().map(|&q| ((q >> 4) as i32 - 8) as f32 * d));
        }),
        GgmlType::Q4_1 => blocks.for_each(|b| {
            let (d, m) = (f16_at(b, 0), f16_at(b, 2));
            let qs = &b[4..];
            out.extend(qs.iter().map(|&q| (q & 0xF) as f32 * d + m));
            out.extend(qs.iter().map(|&q| (q >> 4) as f32 * d + m));
        }),
        GgmlType::Q4K => blocks.for_each(|b| dequantize_q4k(b, &mut out)),
        GgmlType::Q6K => blocks.for_each(|b| dequantize_q6k(b, &mut out)),
    }
    Ok(out)
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K block (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    let (d, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (d as f32, m as f32)
}

/// Q4_K: d, dmin (f16), 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles.
fn dequantize_q4k(b: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (chunk, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        out.extend(q.iter().map(|&x| d * sc1 * (x & 0xF) as f32 - dmin * m1));
        out.extend(q.iter().map(|&x| d * sc2 * (x >> 4) as f32 - dmin * m2));
    }
}

/// Q6_K: 128 bytes low nibbles, 64 bytes high bits, 16 i8 scales, d (f16).
fn dequantize_q6k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 208);
    let start = out.len();
    out.resize(start + 256, 0.0);
    let y = &mut out[start..];
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_nibble_order_is_low_then_high() {
        let mut b = vec![0u8; 18];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2] = 0x9F; // low 15 -> (15-8)*0.5 = 3.5 at index 0; high 9 -> 0.5 at index 16
        let y = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
        assert_eq!(y[0], 3.5);
        assert_eq!(y[16], 0.5);
        assert_eq!(y[1], -4.0);
    }

    #[test]
    fn q8_0_scales_signed_bytes() {
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
        b[2] = (-4i8) as u8;
        b[33] = 8;
        let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        assert_eq!((y[0], y[31]), (-1.0, 2.0));
    }

    #[test]
    fn wrong_byte_count_is_an_error() {
        assert!(dequantize(GgmlType::Q4_1, &[0u8; 19], 32).is_err());
    }

    #[test]
    fn garbage_is_not_gguf() {
        let err = parse(b"GGML\x03\0\0\0").unwrap_err();
        assert!(err.contains("not a GGUF file"), "{err}");
        let err = parse(b"GGUF\x03\0\0\0\x01\0").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
