//! The store's JSON form, read and written by hand: entries are checked and indexed as they
//! stream past, text is borrowed from the file where it has no escapes, and a large store in
//! the layout [`Store::to_json`] writes is parsed in two halves on two threads.

use super::*;

/// The file form, read side: the top-level object, read by hand so that entries can be
/// checked as they stream past. Unknown fields are refused so a typo in a hand edit is caught.
pub(super) struct StoreSeed<'p> {
    pub(super) problem: &'p mut Option<StoreError>,
    pub(super) capacity: usize,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum StoreField {
    Version,
    Prefix,
    Entries,
}

impl<'de> de::DeserializeSeed<'de> for StoreSeed<'_> {
    type Value = Store;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Store, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StoreSeed<'_> {
    type Value = Store;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token store object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Store, A::Error> {
        let (mut version, mut prefix, mut entries) = (None, None, None);
        while let Some(field) = map.next_key::<StoreField>()? {
            match field {
                StoreField::Version if version.is_none() => {
                    let v: u32 = map.next_value()?;
                    if v != STORE_VERSION {
                        *self.problem = Some(StoreError::UnsupportedVersion { found: v });
                        return Err(de::Error::custom("unsupported version"));
                    }
                    version = Some(v);
                }
                StoreField::Prefix if prefix.is_none() => {
                    let text: Cow<'de, str> = map.next_value()?;
                    match Prefix::new(&text) {
                        Ok(p) => prefix = Some(p),
                        Err(e) => {
                            *self.problem = Some(StoreError::BadPrefix(e));
                            return Err(de::Error::custom("bad prefix"));
                        }
                    }
                }
                StoreField::Entries if entries.is_none() => {
                    entries = Some(map.next_value_seed(EntriesSeed {
                        problem: &mut *self.problem,
                        capacity: self.capacity,
                    })?);
                }
                StoreField::Version => return Err(de::Error::duplicate_field("version")),
                StoreField::Prefix => return Err(de::Error::duplicate_field("prefix")),
                StoreField::Entries => return Err(de::Error::duplicate_field("entries")),
            }
        }
        let version = version.ok_or_else(|| de::Error::missing_field("version"))?;
        let prefix = prefix.ok_or_else(|| de::Error::missing_field("prefix"))?;
        let (entries, index) = entries.ok_or_else(|| de::Error::missing_field("entries"))?;
        Ok(Store {
            version,
            prefix,
            entries,
            index,
        })
    }
}

/// Stores of at least this many bytes (some 14,000 tokens) are parsed in two halves on two
/// threads when they are in the layout [`Store::to_json`] writes: a reload of 100,000 tokens
/// then takes about half the time (issue 5: under 100 ms).
pub(super) const PARSE_IN_HALVES_FROM: usize = 4 << 20;

/// The fast path of [`Store::from_json`] for large stores in exactly the layout
/// [`Store::to_json`] writes. The entries are split at an entry boundary near the middle,
/// each half is parsed and checked on its own thread, and the halves are joined (ids checked
/// unique across them). `None` for any other layout and for any problem at all: the caller
/// then parses the whole text in one pass, which reports the problem with its exact line and
/// entry number. A JSON string cannot hold a raw newline, so the boundary pattern below can
/// only be structure, never text inside a name.
pub(super) fn parse_in_halves(text: &str) -> Option<Store> {
    const OPEN: &str = "\n  \"entries\": [\n";
    const BETWEEN: &str = "\n    },\n    {\n";
    const CLOSE: &str = "\n  ]\n}";
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Head<'a> {
        version: u32,
        #[serde(borrow)]
        prefix: Cow<'a, str>,
    }
    let open = text.find(OPEN)?;
    let close = text.rfind(CLOSE)?;
    if !matches!(&text[close + CLOSE.len()..], "" | "\n") {
        return None;
    }
    let first = open + OPEN.len();
    let mid = first + (close.checked_sub(first)? / 2);
    let split = mid + text.get(mid..close)?.find(BETWEEN)?;
    let (a_end, b_start) = (split + "\n    }".len(), split + "\n    },\n".len());
    // `{ "version": 1, "prefix": "kg",`: close it off and read it.
    let head_text = format!("{}}}", text[..open].strip_suffix(',')?);
    let head: Head<'_> = serde_json::from_str(&head_text).ok()?;
    let prefix = Prefix::new(&head.prefix).ok()?;
    if head.version != STORE_VERSION {
        return None;
    }
    let capacity = text.len() / 256;
    let parse = |body: &str, capacity: usize| {
        let doc = format!("[{body}]");
        let mut problem = None;
        let mut de = serde_json::Deserializer::from_str(&doc);
        let seed = EntriesSeed {
            problem: &mut problem,
            capacity,
        };
        let half = seed.deserialize(&mut de).ok()?;
        de.end().ok()?;
        problem.is_none().then_some(half)
    };
    let (a, b) = std::thread::scope(|scope| {
        let b = std::thread::Builder::new()
            .spawn_scoped(scope, || parse(&text[b_start..close], capacity / 2));
        // The first half gets room for the whole store, so joining moves nothing.
        let a = parse(&text[first..a_end], capacity);
        let b = match b {
            Ok(handle) => handle.join().ok().flatten(),
            Err(_) => parse(&text[b_start..close], capacity / 2),
        };
        (a, b)
    });
    let ((mut entries, mut index), (b_entries, b_index)) = (a?, b?);
    let offset = u32::try_from(entries.len()).ok()?;
    index.reserve(b_index.len());
    for mut slot in b_index {
        slot.pos += offset;
        if !index.insert(slot) {
            return None;
        }
    }
    entries.extend(b_entries);
    Some(Store {
        version: head.version,
        prefix,
        entries,
        index,
    })
}

/// The `entries` array: each entry checked and indexed as soon as it is read.
struct EntriesSeed<'p> {
    problem: &'p mut Option<StoreError>,
    capacity: usize,
}

impl<'de> de::DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = (Vec<Entry>, HashSet<Slot>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = (Vec<Entry>, HashSet<Slot>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of token entries")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let capacity = self.capacity.min(1 << 20);
        let mut entries: Vec<Entry> = Vec::with_capacity(capacity);
        let mut index: HashSet<Slot> = HashSet::with_capacity(capacity);
        while let Some(e) = seq.next_element::<EntryIn<'de>>()? {
            let number = entries.len() + 1;
            let checked = check_entry(e, number).and_then(|entry| {
                // One probe both checks that the id is new and files it.
                let slot = Slot::of(&entry, entries.len());
                if index.insert(slot) {
                    return Ok(entry);
                }
                let other = index.get(&slot.id).map_or(0, |s| s.pos as usize);
                Err(StoreError::InvalidEntry {
                    number,
                    id: Some(entry.id),
                    problem: format!("its id is also used by entry #{}", other + 1),
                })
            });
            match checked {
                Ok(entry) => entries.push(entry),
                Err(problem) => {
                    *self.problem = Some(problem);
                    return Err(de::Error::custom("invalid entry"));
                }
            }
        }
        Ok((entries, index))
    }
}

/// Checks one entry read from the file (`number` is 1-based) against the store's rules.
/// (Duplicate ids are caught when the entry is indexed.)
fn check_entry(e: EntryIn<'_>, number: usize) -> Result<Entry, StoreError> {
    let invalid = |problem: String| StoreError::InvalidEntry {
        number,
        id: token::is_valid_id(&e.id).then(|| e.id.to_string()),
        problem,
    };
    if !token::is_valid_id(&e.id) {
        return Err(invalid("its id is not 12 base62 characters".to_owned()));
    }
    if !name_rule_ok(&e.name) {
        return Err(invalid(format!("its name {}", NAME_RULE)));
    }
    if let Some(pos) = e.scopes.iter().position(|s| check_scope(s).is_err()) {
        return Err(invalid(format!("its scope #{} {}", pos + 1, SCOPE_RULE)));
    }
    let Some(digest) = Digest::from_hex(&e.digest) else {
        return Err(invalid(format!(
            "its digest must be 64 hex digits (HMAC-SHA-256), found {} characters",
            e.digest.chars().count()
        )));
    };
    Ok(Entry {
        id: e.id.into_owned(),
        name: e.name,
        scopes: e.scopes,
        created: e.created,
        expires: e.expires,
        status: e.status,
        digest,
    })
}

/// Text fields are borrowed from the file where they hold no escapes: fewer allocations on
/// a reload of a large store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    name: String,
    scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    status: Status,
    #[serde(borrow)]
    digest: Cow<'a, str>,
}

/// The file form, write side; field order here is the order in the file.
#[derive(Serialize)]
pub(super) struct StoreOut<'a> {
    pub(super) version: u32,
    pub(super) prefix: &'a str,
    pub(super) entries: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
pub(super) struct EntryOut<'a> {
    pub(super) id: &'a str,
    pub(super) name: &'a str,
    pub(super) scopes: &'a [String],
    #[serde(with = "time::serde::rfc3339")]
    pub(super) created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub(super) expires: Option<OffsetDateTime>,
    pub(super) status: Status,
    pub(super) digest: String,
}
