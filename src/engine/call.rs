//! The call a build is for: the request, the call's account, the calling device and the
//! inputs the configuration is read from. It is set once the first batch of documents is
//! read ([`CallContext::enter_account`], [`CallContext::set_caller`]); after that every leg,
//! gate and configuration lookup of the build reads it and nothing changes it.

use std::sync::LazyLock;

use serde_json::Value;

use super::attributes::Endpoint;
use super::inputs::Inputs;
use crate::build_api::BuildRequest;
use crate::document::Document;
use crate::kz_json::ne_str;

/// The account document of a call whose account is missing.
static NO_ACCOUNT: LazyLock<Document> = LazyLock::new(|| Document::new(Value::Null));

/// What every leg of one build reads about the call.
pub struct CallContext<'a> {
    req: &'a BuildRequest,
    inputs: &'a Inputs,
    /// The call's account document (`null` when missing).
    account: &'a Document,
    /// The account's realm.
    account_realm: Option<&'a str>,
    /// The calling device, merged, when it is in the database.
    caller: Option<Endpoint<'a>>,
}

impl<'a> CallContext<'a> {
    /// The context before the account is read: no account, no caller.
    pub(super) fn new(req: &'a BuildRequest, inputs: &'a Inputs) -> Self {
        Self {
            req,
            inputs,
            account: &NO_ACCOUNT,
            account_realm: None,
            caller: None,
        }
    }

    /// Sets the call's account (`None`: it does not exist); its realm is the document's
    /// `realm`, else the one the request names.
    pub(super) fn enter_account(&mut self, account: Option<&'a Document>) {
        let account = account.unwrap_or(&NO_ACCOUNT);
        self.account = account;
        self.account_realm =
            ne_str(account.view().top.realm).or(self.req.call.account_realm.as_deref());
    }

    /// Sets the calling device (merged with the account and its owner).
    pub(super) fn set_caller(&mut self, caller: Option<Endpoint<'a>>) {
        self.caller = caller;
    }

    /// The build request.
    pub fn req(&self) -> &'a BuildRequest {
        self.req
    }

    /// Everything the engine may read (documents, configuration, registrations).
    pub fn inputs(&self) -> &'a Inputs {
        self.inputs
    }

    /// The call's account document (`null` when missing).
    pub fn account(&self) -> &'a Document {
        self.account
    }

    /// The account's realm.
    pub fn account_realm(&self) -> Option<&'a str> {
        self.account_realm
    }

    /// The calling device, merged, when it is in the database.
    pub fn caller(&self) -> Option<&Endpoint<'a>> {
        self.caller.as_ref()
    }
}
