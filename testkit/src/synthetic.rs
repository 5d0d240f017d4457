//! Synthetic accounts for benchmarks and the load tool: realistic documents (the fields a
//! Crossbar-saved device carries), in the shapes the performance targets name: one device, a
//! user with N devices, a group of 50 members with nested groups.

use serde_json::{Value, json};

use kz_endpoint::engine::Inputs;
use kz_endpoint::registrar::{RegKey, Registration};

/// A 32-character id: `prefix` then `n` in hex, zero-padded.
pub fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$x}", width = 32 - prefix.len())
}

/// A synthetic account and the ids of its interesting endpoints.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account id.
    pub id: String,
    /// Its SIP realm.
    pub realm: String,
    /// Every document: account, users, devices, groups, the calling device.
    pub docs: Vec<Value>,
    /// A plain SIP device with an owner.
    pub device: String,
    /// A user owning `user_devices` devices.
    pub user: String,
    /// A group of 50 members (devices, users and nested groups).
    pub group: String,
    /// The calling device.
    pub caller: String,
    /// Every SIP username, registered in the realm.
    pub usernames: Vec<String>,
}

/// A device document as Crossbar stores it (every schema default written out).
pub fn device_doc(account_id: &str, id: &str, username: &str, owner: Option<&str>) -> Value {
    let mut d = json!({
        "_id": id, "pvt_type": "device", "pvt_account_id": account_id,
        "pvt_created": 63_877_489_200u64, "pvt_modified": 63_877_489_200u64, "pvt_vsn": "1",
        "name": format!("Phone {username}"), "device_type": "sip_device", "enabled": true,
        "sip": {"username": username, "password": "not-a-real-password", "method": "password",
                "invite_format": "contact", "expire_seconds": 300, "registration_expiration": 300},
        "media": {"audio": {"codecs": ["PCMU", "PCMA", "OPUS"]}, "video": {"codecs": []},
                  "encryption": {"enforce_security": false, "methods": []},
                  "bypass_media": "auto", "ignore_early_media": false, "fax_option": false},
        "call_forward": {"enabled": false, "number": "", "substitute": true, "failover": false,
                         "require_keypress": true, "keep_caller_id": true, "direct_calls_only": false,
                         "ignore_early_media": true},
        "caller_id": {"internal": {"number": format!("1{}", &id[28..])}},
        "music_on_hold": {}, "ringtones": {}, "call_restriction": {}, "contact_list": {},
        "suppress_unregister_notifications": false, "register_overwrite_notify": false,
        "exclude_from_queues": false, "mwi_unsolicited_updates": true,
        "provision": {"endpoint_brand": "yealink", "endpoint_family": "t4x", "endpoint_model": "t46s"}
    });
    if let Some(o) = owner {
        d["owner_id"] = json!(o);
    }
    d
}

fn user_doc(account_id: &str, id: &str, n: usize) -> Value {
    json!({
        "_id": id, "pvt_type": "user", "pvt_account_id": account_id, "enabled": true,
        "first_name": "User", "last_name": format!("{n}"), "presence_id": format!("{}", 2000 + n),
        "caller_id": {"internal": {"number": format!("{}", 2000 + n)}},
        "call_forward": {"enabled": false, "substitute": true, "failover": false},
        "hotdesk": {"enabled": false, "require_pin": false, "keep_logged_in_elsewhere": false},
        "vm_to_email_enabled": true, "priv_level": "user", "timezone": "America/New_York"
    })
}

/// Builds the account: `user_devices` devices for the user.
pub fn account(account_id: &str, user_devices: usize) -> Account {
    let realm = format!("{}.sip.example.com", &account_id[..6]);
    let mut docs = vec![json!({
        "_id": account_id, "pvt_type": "account", "name": "Bench", "realm": realm,
        "caller_id": {"external": {"number": "+14155550000", "name": "Bench"}},
        "pvt_enabled": true, "pvt_tree": []
    })];
    let mut usernames = Vec::new();
    let mut n = 0;
    let mut new_device = |owner: Option<&str>, docs: &mut Vec<Value>| {
        n += 1;
        let did = id("d", n);
        let username = format!("u{n:05}");
        docs.push(device_doc(account_id, &did, &username, owner));
        usernames.push(username);
        did
    };
    let caller_user = id("u", 0);
    docs.push(user_doc(account_id, &caller_user, 0));
    let caller = new_device(Some(&caller_user), &mut docs);
    let user = id("u", 1);
    docs.push(user_doc(account_id, &user, 1));
    let device = new_device(Some(&user), &mut docs);
    for _ in 1..user_devices {
        new_device(Some(&user), &mut docs);
    }
    // The group: 40 devices, 5 users with 2 devices each, 5 nested groups of 2 devices.
    let mut members = serde_json::Map::new();
    for w in 0..40 {
        let owner = id("u", 100 + w);
        docs.push(user_doc(account_id, &owner, 100 + w));
        let d = new_device(Some(&owner), &mut docs);
        members.insert(d, json!({"type": "device", "weight": w + 1}));
    }
    for k in 0..5 {
        let u = id("u", 200 + k);
        docs.push(user_doc(account_id, &u, 200 + k));
        new_device(Some(&u), &mut docs);
        new_device(Some(&u), &mut docs);
        members.insert(u, json!({"type": "user", "weight": 50 + k}));
    }
    for k in 0..5 {
        let g = id("g", 10 + k);
        let mut inner = serde_json::Map::new();
        for _ in 0..2 {
            let d = new_device(None, &mut docs);
            inner.insert(d, json!({"type": "device"}));
        }
        docs.push(
            json!({"_id": g, "pvt_type": "group", "name": format!("Team {k}"), "endpoints": inner}),
        );
        members.insert(g, json!({"type": "group", "weight": 60 + k}));
    }
    let group = id("g", 1);
    docs.push(json!({"_id": group, "pvt_type": "group", "name": "Everyone", "endpoints": members}));
    Account {
        id: account_id.to_owned(),
        realm,
        docs,
        device,
        user,
        group,
        caller,
        usernames,
    }
}

impl Account {
    /// A `build_req` for `endpoint_id` from the calling device.
    pub fn request(&self, endpoint_id: &str) -> Value {
        json!({
            "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": "bench",
            "App-Name": "callflow", "App-Version": "4.0.0", "Server-ID": "bench",
            "Account-ID": self.id, "Call-ID": "bench-call", "Endpoint-ID": endpoint_id,
            "Properties": {"source": "cf_device", "timeout": 20},
            "Call": {"Account-ID": self.id, "Authorizing-ID": self.caller,
                     "Caller-ID-Name": "Caller", "Caller-ID-Number": "1000",
                     "Request": format!("2001@{}", self.realm), "Request-User": "2001",
                     "Request-Realm": self.realm, "Resource-Type": "audio",
                     "Custom-Channel-Vars": {}, "Key-Value-Store": {}}
        })
    }

    /// Every device's registration key.
    pub fn registrations(&self) -> Vec<RegKey> {
        self.usernames
            .iter()
            .map(|u| RegKey::new(u.clone(), self.realm.clone()))
            .collect()
    }

    /// Everything the engine reads, fully gathered, every device registered.
    pub fn inputs(&self) -> Inputs {
        let mut inputs = Inputs::default();
        for d in &self.docs {
            let id = d["_id"].as_str().expect("_id").to_owned();
            if d["pvt_type"] == "device" {
                for owner in kz_endpoint::documents::owned_view_owners(d) {
                    inputs
                        .owned
                        .entry(owner.to_owned())
                        .or_default()
                        .push(id.clone());
                }
            }
            if d["pvt_type"] == "user" {
                inputs.owned.entry(id.clone()).or_default();
            }
            inputs
                .docs
                .insert(id, Some(std::sync::Arc::new(d.clone().into())));
        }
        for list in inputs.owned.values_mut() {
            list.sort();
        }
        for k in self.registrations() {
            inputs.registrations.insert(k, Registration::Registered);
        }
        inputs.without_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kz_endpoint::build_api::parse_request;
    use kz_endpoint::engine::{Outcome, build};

    #[test]
    fn the_shapes_build_completely_in_one_pass() {
        let a = account("be0c4000000000000000000000000001", 10);
        let inputs = a.inputs();
        for (target, legs) in [(&a.device, 1), (&a.user, 10), (&a.group, 60)] {
            let req = parse_request(a.request(target).as_object().unwrap()).unwrap();
            match build(&req, &inputs) {
                Outcome::Done { result: Ok(l), .. } => assert_eq!(l.len(), legs, "{target}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }
}
