-- keygate's /auth for HAProxy: an auth-request action on HAProxy's own HTTP client
-- (core.httpclient, HAProxy 2.5 or later, built with Lua as Debian's haproxy package is).
-- It needs no other Lua module. Used by haproxy.cfg next to it:
--
--   global
--       lua-load /etc/haproxy/keygate-auth.lua
--   frontend web
--       http-request lua.keygate-auth 127.0.0.1:9180
--
-- keygate is told only what it judges: the bearer token, the request target and method, and
-- the client's address as HAProxy saw it (never the client's own X-Forwarded-For). The
-- answer is left in variables for haproxy.cfg's rules:
--   txn.kg_status            keygate's status (200, 401, 403, ...), 0 when it did not answer
--   txn.kg_user, txn.kg_token_id, txn.kg_scopes   the identity of an allowed request
--   txn.kg_www_authenticate  the challenge of a refusal

local function first(values)
    if values == nil then
        return nil
    end
    -- HAProxy's header tables count from 0.
    return values[0] or values[1]
end

local function keygate_auth(txn, keygate)
    local request = txn.http:req_get_headers()
    local headers = {
        ["x-original-uri"] = { txn.f:url() },
        ["x-original-method"] = { txn.f:method() },
        ["x-forwarded-for"] = { txn.f:src() },
    }
    local authorization = request["authorization"]
    if authorization ~= nil then
        if authorization[0] ~= nil and authorization[1] ~= nil then
            -- Two Authorization headers: keygate would judge one, the app might read the
            -- other. Refuse.
            txn:set_var("txn.kg_status", 400)
            return
        end
        headers["authorization"] = { first(authorization) }
    end
    local ok, response = pcall(function()
        return core.httpclient():get({
            url = "http://" .. keygate .. "/auth",
            headers = headers,
            timeout = 5000,
        })
    end)
    if not ok or response == nil or response.status == nil then
        txn:set_var("txn.kg_status", 0)
        return
    end
    local h = response.headers or {}
    txn:set_var("txn.kg_status", response.status)
    txn:set_var("txn.kg_user", first(h["x-auth-request-user"]) or "")
    txn:set_var("txn.kg_token_id", first(h["x-auth-request-token-id"]) or "")
    txn:set_var("txn.kg_scopes", first(h["x-auth-request-scopes"]) or "")
    txn:set_var("txn.kg_www_authenticate", first(h["www-authenticate"]) or "")
end

core.register_action("keygate-auth", { "http-req" }, keygate_auth, 1)
