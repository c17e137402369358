//! The device authorization grant (RFC 8628): the authorization a device asks for, its
//! polling with `slow_down`, and the page where a signed-in person types and approves the
//! user code (wrong codes count against a limiter, in the link as in the form).

use super::*;

/// How long a device authorization waits for its person (RFC 8628 suggests minutes).
const DEVICE_LIFETIME: Duration = Duration::minutes(10);
/// The polling interval a device starts with, and what each `slow_down` adds (RFC 8628 §3.5).
const DEVICE_INTERVAL: Duration = Duration::seconds(5);
/// The user-code alphabet of RFC 8628 §6.1: consonants only, so no word is spelt and
/// nothing is mistaken; 8 of them are 34.6 bits.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// A user code as typed: case, dashes and spaces do not matter.
fn normalize_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < USER_CODE_LEN {
        aws_lc_rs::rand::fill(&mut buf).expect("the system random generator works");
        for &b in &buf {
            // 240 = 12 × 20: rejection keeps every letter equally likely.
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    out
}

impl Provider {
    /// `POST /device_authorization` (RFC 8628 §3.1).
    pub(crate) fn device_authorization(
        &self,
        headers: &HeaderMap,
        form: &Form,
    ) -> Result<Response<Body>, OAuthError> {
        let client = self.authenticate(headers, form)?;
        if !client
            .grants
            .iter()
            .any(|g| g == crate::clients::Grant::DeviceCode.as_str())
        {
            return Err(bad(
                "unauthorized_client",
                "the client is not registered for the device grant",
            ));
        }
        let scopes = people_scopes(&client.scopes, form.get("scope")?).ok_or(bad(
            "invalid_scope",
            "a requested scope is not one the client may be given",
        ))?;
        let resource = match form.get("resource")? {
            None => None,
            Some(r) => Some(check_resource(r)?.to_owned()),
        };
        let (_, device_code) = kg_tokens::generate(&prefix(DEVICE_PREFIX));
        let now = self.now_ms();
        let interval = DEVICE_INTERVAL.whole_milliseconds() as i64;
        let mut user_code = new_user_code();
        let mut stored = false;
        for _ in 0..3 {
            let record = DeviceRecord {
                digest: self.pepper.digest(device_code.expose_secret()),
                user_code: user_code.clone(),
                client_id: client.id.clone(),
                scope: scopes.join(" "),
                resource: resource.clone(),
                expires: now + DEVICE_LIFETIME.whole_milliseconds() as i64,
                interval_ms: interval,
                next_poll: now + interval,
                subject: None,
                auth_time: None,
                denied: None,
                used: None,
                token_id: None,
            };
            match self.store.insert_device(&record) {
                Ok(()) => {
                    stored = true;
                    break;
                }
                Err(kg_store::Error::Conflict { .. }) => user_code = new_user_code(),
                Err(_) => return Err(SERVER_ERROR),
            }
        }
        if !stored {
            return Err(SERVER_ERROR);
        }
        let shown = format!("{}-{}", &user_code[..4], &user_code[4..]);
        let uri = format!("{}{DEVICE}", self.settings.issuer);
        let body = serde_json::json!({
            "device_code": device_code.expose_secret(),
            "user_code": shown,
            "verification_uri": uri,
            "verification_uri_complete": with_query(&uri, &[("user_code", &shown)]),
            "expires_in": DEVICE_LIFETIME.whole_seconds(),
            "interval": DEVICE_INTERVAL.whole_seconds(),
        });
        Ok(json(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&body).expect("JSON serializes")),
            "no-store",
        ))
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).
    pub(crate) fn device_grant(
        &self,
        client: &ClientRecord,
        form: &Form,
    ) -> Result<Response<Body>, OAuthError> {
        let code = form
            .get("device_code")?
            .ok_or(bad("invalid_request", "device_code is missing"))?;
        let unknown = bad("invalid_grant", "the device code is unknown or spent");
        kg_tokens::parse(code, &prefix(DEVICE_PREFIX)).map_err(|_| unknown)?;
        let poll = self
            .store
            .poll_device(
                &self.pepper.digest(code),
                &client.id,
                self.now_ms(),
                DEVICE_INTERVAL.whole_milliseconds() as i64,
            )
            .map_err(|_| SERVER_ERROR)?;
        let d = match poll {
            DevicePoll::Approved(d) => d,
            DevicePoll::Pending => {
                return Err(bad(
                    "authorization_pending",
                    "the person has not answered yet",
                ));
            }
            DevicePoll::SlowDown => {
                return Err(bad(
                    "slow_down",
                    "polling too fast: wait 5 more seconds between polls",
                ));
            }
            DevicePoll::Denied => return Err(bad("access_denied", "the person said no")),
            DevicePoll::Expired => {
                return Err(bad("expired_token", "the device code expired; start again"));
            }
            DevicePoll::Used | DevicePoll::Unknown => return Err(unknown),
        };
        let holder = self.holder_of(d.token_id.as_deref()).ok_or(bad(
            "access_denied",
            "the person's sign-in token no longer stands",
        ))?;
        let grant = self.new_grant(
            client,
            &holder,
            d.token_id.clone(),
            &d.scope,
            d.resource.clone(),
            d.auth_time.unwrap_or_else(|| self.now_ms()),
        );
        let (rt, first) = self.first_refresh(&grant);
        self.store
            .insert_grant(&grant, &first)
            .map_err(|_| SERVER_ERROR)?;
        self.person_tokens(client, &grant, &grant.scope, &rt, None)
    }

    /// The device page: GET shows the code form (or, with a valid `user_code`, what the
    /// device asks for); POST approves or denies. A person must be signed in first.
    pub(crate) async fn device_page(
        &self,
        req: Request<Incoming>,
        peer: std::net::IpAddr,
    ) -> Response<Body> {
        let Some(sign_in) = self.sign_in.clone() else {
            return kg_http::response::empty(StatusCode::NOT_FOUND);
        };
        let (parts, body) = req.into_parts();
        let Some(person) = self.person(&parts.headers, peer) else {
            kg_login::form::drain(body).await;
            return sign_in.redirect(&parts.uri);
        };
        let (subject, csrf) = (&person.holder.name, &person.csrf);
        let client_ip = self.verifier.client(peer, &parts.headers);
        let action = format!("{}{DEVICE}", issuer_path(&self.settings.issuer));
        match parts.method {
            Method::GET | Method::HEAD => {
                let q = Form::parse(parts.uri.query().unwrap_or("").as_bytes()).ok();
                let typed = q
                    .as_ref()
                    .and_then(|q| q.get("user_code").ok().flatten())
                    .map(normalize_user_code);
                // A code in the link is a guess like one typed into the form: the same
                // limiter counts the wrong ones, so the page cannot be scanned for codes.
                let key = kg_http::limiter::client_key(client_ip);
                let (status, found, error) = match typed.as_deref() {
                    None => (StatusCode::OK, None, None),
                    Some(_) if self.user_codes_throttled(key) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        None,
                        Some("Too many wrong codes from this address: wait a minute."),
                    ),
                    Some(c) => match self.live_device(c) {
                        Some(d) => (StatusCode::OK, Some(d), None),
                        None => {
                            if let Some(l) = &self.user_codes {
                                l.fail(key);
                            }
                            (
                                StatusCode::BAD_REQUEST,
                                None,
                                Some("That code is not valid, or it has expired."),
                            )
                        }
                    },
                };
                self.device_html(&sign_in, status, &action, csrf, subject, found, error)
            }
            Method::POST => {
                if sign_in.cross_site(&parts.headers, &parts.uri) {
                    kg_login::form::drain(body).await;
                    return self.device_html(
                        &sign_in,
                        StatusCode::FORBIDDEN,
                        &action,
                        csrf,
                        subject,
                        None,
                        Some("This form was sent from another site."),
                    );
                }
                let key = kg_http::limiter::client_key(client_ip);
                if self.user_codes_throttled(key) {
                    kg_login::form::drain(body).await;
                    return self.device_html(
                        &sign_in,
                        StatusCode::TOO_MANY_REQUESTS,
                        &action,
                        csrf,
                        subject,
                        None,
                        Some("Too many wrong codes from this address: wait a minute."),
                    );
                }
                let bytes = match kg_login::form::read_form(&parts.headers, body).await {
                    Ok(b) => b,
                    Err(status) => return kg_http::response::empty(status),
                };
                let Ok(form) = Form::parse(&bytes) else {
                    return kg_http::response::empty(StatusCode::BAD_REQUEST);
                };
                let sent_csrf = form.get("csrf").ok().flatten().unwrap_or("");
                if !bool::from(sent_csrf.as_bytes().ct_eq(csrf.as_bytes())) {
                    return self.device_html(
                        &sign_in,
                        StatusCode::FORBIDDEN,
                        &action,
                        csrf,
                        subject,
                        None,
                        Some("This form has expired: enter the code again."),
                    );
                }
                let code = normalize_user_code(form.get("user_code").ok().flatten().unwrap_or(""));
                let decision = form.get("decision").ok().flatten();
                let Some(device) = self.live_device(&code) else {
                    if let Some(l) = &self.user_codes {
                        l.fail(key);
                    }
                    return self.device_html(
                        &sign_in,
                        StatusCode::BAD_REQUEST,
                        &action,
                        csrf,
                        subject,
                        None,
                        Some("That code is not valid, or it has expired."),
                    );
                };
                let now = self.now_ms();
                let (approve, said) = match decision {
                    Some("approve") => (true, "You approved the device. You can close this page."),
                    Some("deny") => (false, "You denied the device. Nothing was given to it."),
                    _ => {
                        return self.device_html(
                            &sign_in,
                            StatusCode::OK,
                            &action,
                            csrf,
                            subject,
                            Some(device),
                            None,
                        );
                    }
                };
                let who = approve.then_some(kg_store::Approval {
                    subject,
                    token_id: &person.token_id,
                    auth_time: now,
                });
                match self.store.decide_device(&device.0.user_code, who, now) {
                    Ok(true) => sign_in.page(
                        StatusCode::OK,
                        "Device",
                        &format!("<h1>Done</h1>\n<p id=\"done\">{said}</p>\n"),
                    ),
                    _ => self.device_html(
                        &sign_in,
                        StatusCode::CONFLICT,
                        &action,
                        csrf,
                        subject,
                        None,
                        Some("That code was answered already."),
                    ),
                }
            }
            _ => kg_http::response::method_not_allowed("GET, HEAD, POST"),
        }
    }

    /// Whether the address `key` stands for has guessed too many wrong user codes.
    fn user_codes_throttled(&self, key: u128) -> bool {
        self.user_codes
            .as_ref()
            .is_some_and(|l| matches!(l.check(key), kg_http::limiter::Check::Throttled { .. }))
    }

    /// A pending device authorization by user code, with its client's name.
    fn live_device(&self, code: &str) -> Option<(DeviceRecord, String)> {
        if code.len() != USER_CODE_LEN {
            return None;
        }
        let d = self.store.device_by_user_code(code, self.now_ms()).ok()??;
        if d.subject.is_some() || d.denied.is_some() || d.used.is_some() {
            return None;
        }
        let name = self
            .clients()
            .client(&d.client_id)
            .ok()
            .flatten()
            .map_or_else(|| d.client_id.clone(), |c| c.name);
        Some((d, name))
    }

    #[allow(clippy::too_many_arguments)]
    fn device_html(
        &self,
        sign_in: &kg_login::SignIn,
        status: StatusCode,
        action: &str,
        csrf: &str,
        subject: &str,
        found: Option<(DeviceRecord, String)>,
        error: Option<&str>,
    ) -> Response<Body> {
        let mut b = String::with_capacity(2048);
        b.push_str("<h1>Connect a device</h1>\n");
        b.push_str(&format!(
            "<p class=\"sub\">Signed in as <strong>{}</strong>.</p>\n",
            escape(subject)
        ));
        if let Some(e) = error {
            b.push_str(&format!(
                "<p id=\"error\" role=\"alert\">{}</p>\n",
                escape(e)
            ));
        }
        match found {
            Some((d, client)) => {
                let scopes = if d.scope.is_empty() {
                    "no scopes".to_owned()
                } else {
                    d.scope.clone()
                };
                let shown = format!("{}-{}", &d.user_code[..4], &d.user_code[4..]);
                b.push_str(&format!(
                    "<p id=\"request\"><strong>{}</strong> asks to act as you, with {}.</p>\n\
                     <p class=\"sub\">Approve only if this code is the one your device shows: \
                     <code id=\"user-code\">{}</code></p>\n\
                     <form id=\"device-form\" method=\"post\" action=\"{}\">\n\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
                     <input type=\"hidden\" name=\"user_code\" value=\"{}\">\n\
                     <button id=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n\
                     <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
                     </form>\n",
                    escape(&client),
                    escape(&scopes),
                    escape(&shown),
                    escape(action),
                    escape(csrf),
                    escape(&d.user_code),
                ));
            }
            None => {
                b.push_str(&format!(
                    "<form id=\"device-form\" method=\"post\" action=\"{}\">\n\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
                     <label for=\"user_code\">The code your device shows</label>\n\
                     <input id=\"user_code\" name=\"user_code\" type=\"text\" required \
                     autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" \
                     maxlength=\"16\" placeholder=\"XXXX-XXXX\" autofocus>\n\
                     <button type=\"submit\">Continue</button>\n\
                     </form>\n",
                    escape(action),
                    escape(csrf),
                ));
            }
        }
        sign_in.page(status, "Connect a device", &b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_consonant_alphabet_and_typing_is_forgiving() {
        let c = new_user_code();
        assert_eq!(c.len(), 8);
        assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
        assert_eq!(normalize_user_code("bcdf-ghjk"), "BCDFGHJK");
        assert_eq!(normalize_user_code(" BCDF GHJK "), "BCDFGHJK");
    }
}
