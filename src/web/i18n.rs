//! Every user-facing word of the web page, in one catalogue: English and Spanish.
//!
//! The language is the `?lang=` of the request (which is then remembered in a
//! cookie), else the remembered one, else the best of `Accept-Language`, else
//! English. A [`Catalogue`] is one struct per language, so a missing translation is a
//! compile error. `{name}` in a string is a placeholder filled by [`fill`].

use aidmesh_proto::rules::Problem;
use aidmesh_proto::{Category, Kind, Status};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::cookies::{self, Jar};
use crate::matcher::Reason;

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "aidmesh_lang";

/// A language of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Spanish.
    Es,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub const ALL: &'static [Lang] = &[Lang::En, Lang::Es];

    /// The BCP 47 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// The language's name in itself.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
        }
    }

    /// The language of a code such as `es` or `es-AR`.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.iter().copied().find(|l| l.code() == primary)
    }

    /// Its words.
    pub fn catalogue(self) -> &'static Catalogue {
        match self {
            Lang::En => &EN,
            Lang::Es => &ES,
        }
    }
}

/// The best supported language of an `Accept-Language` value (by `q`, then order).
pub fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in value.split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_code) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

fn lang_param(uri: &Uri) -> Option<Lang> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::from_code(&v))
}

/// The language of a request.
pub fn choose(uri: &Uri, jar: &Jar, headers: &HeaderMap) -> Lang {
    lang_param(uri)
        .or_else(|| jar.get(LANG_COOKIE).and_then(Lang::from_code))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// The middleware that remembers a `?lang=` choice in a cookie.
pub async fn remember_choice(request: Request, next: Next) -> Response {
    let chosen = lang_param(request.uri());
    let mut r = next.run(request).await;
    if let Some(l) = chosen {
        if let Ok(v) = HeaderValue::from_str(&cookies::preference(LANG_COOKIE, l.code())) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// "Offer" or "Request".
pub fn kind_name(t: &Catalogue, k: Kind) -> &'static str {
    match k {
        Kind::Offer => t.offer,
        Kind::Request => t.request,
    }
}

/// "Offers" or "Requests".
pub fn kind_plural(t: &Catalogue, k: Kind) -> &'static str {
    match k {
        Kind::Offer => t.offers,
        Kind::Request => t.requests,
    }
}

/// The kind choice on the new post form.
pub fn kind_explain(t: &Catalogue, k: Kind) -> &'static str {
    match k {
        Kind::Offer => t.kind_offer_explain,
        Kind::Request => t.kind_request_explain,
    }
}

/// A category's name.
pub fn category_name(t: &Catalogue, c: Category) -> &'static str {
    match c {
        Category::Food => t.cat_food,
        Category::Housing => t.cat_housing,
        Category::Transport => t.cat_transport,
        Category::Goods => t.cat_goods,
        Category::Skills => t.cat_skills,
        Category::Care => t.cat_care,
        Category::Money => t.cat_money,
        Category::Other => t.cat_other,
    }
}

/// A status's name.
pub fn status_name(t: &Catalogue, s: Status) -> &'static str {
    // By name, so a status added to the protocol shows before it is translated.
    match s.as_str() {
        "open" => t.status_open,
        "fulfilled" => t.status_fulfilled,
        "withdrawn" => t.status_withdrawn,
        "promised" => t.status_promised,
        _ => t.status_other,
    }
}

/// "in 3 days" and the like, for the Expires choice.
pub fn in_days(t: &Catalogue, days: u64) -> String {
    match days {
        1 => t.in_one_day.to_string(),
        7 => t.in_one_week.to_string(),
        14 => t.in_two_weeks.to_string(),
        d => fill(t.in_n_days, &[("n", &d.to_string())]),
    }
}

/// What is wrong with a field, in words.
pub fn problem(t: &Catalogue, p: &Problem) -> String {
    match p {
        Problem::Empty => t.p_empty.to_string(),
        Problem::TooLong { len, max } => fill(
            t.p_too_long,
            &[("len", &len.to_string()), ("max", &max.to_string())],
        ),
        Problem::TooMany { len, max } => fill(
            t.p_too_many,
            &[("len", &len.to_string()), ("max", &max.to_string())],
        ),
        Problem::BadCharacter(c) => fill(t.p_bad_char, &[("c", &c.to_string())]),
        Problem::Duplicate(v) => fill(t.p_duplicate, &[("v", v)]),
        other => other.to_string(),
    }
}

/// Why the store refused a post of this node, in words; `None` for a refusal a
/// person at this node cannot meet (the caller shows the error as it is).
pub fn refusal(t: &Catalogue, e: &crate::store::Error) -> Option<String> {
    use crate::store::{Error, Refused};
    let circle = |c: &str| [("circle", c.to_string())];
    let fill_with = |s: &str, vars: &[(&str, String)]| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        fill(s, &vars)
    };
    Some(match e {
        Error::Refused(Refused::OverQuota { circle: c, live }) => {
            let (s, n) = if *live {
                (
                    t.store_over_live,
                    aidmesh_proto::limits::MAX_LIVE_PER_AUTHOR,
                )
            } else {
                (
                    t.store_over_total,
                    aidmesh_proto::limits::MAX_POSTS_PER_AUTHOR,
                )
            };
            fill_with(s, &[("n", n.to_string()), ("circle", c.clone())])
        }
        Error::Refused(Refused::CircleFull { circle: c }) => {
            fill_with(t.store_circle_full, &circle(c))
        }
        Error::Refused(Refused::NotMember { circle: c }) => {
            fill_with(t.store_not_member, &circle(c))
        }
        Error::Refused(Refused::Newcomers { circle: c }) => {
            fill_with(t.store_newcomers, &circle(c))
        }
        Error::Refused(Refused::Moderated) => t.store_moderated.to_string(),
        Error::DiskFull(_) => t.store_disk_full.to_string(),
        _ => return None,
    })
}

/// Why a match scored, in words.
pub fn reason(t: &Catalogue, r: &Reason) -> String {
    match r {
        Reason::Category(c) => fill(t.r_category, &[("c", category_name(t, *c))]),
        Reason::Tags(n) => fill(t.r_tags, &[("n", &n.to_string())]),
        Reason::Distance(km) if *km < 1.0 => t.r_under_km.to_string(),
        Reason::Distance(km) => fill(t.r_km, &[("n", &format!("{km:.0}"))]),
        Reason::Anywhere => t.r_anywhere.to_string(),
        Reason::Words(n) => fill(t.r_words, &[("n", &n.to_string())]),
        Reason::QuantityFits => t.r_quantity_fits.to_string(),
        Reason::QuantityPartial { offered, requested } => fill(
            t.r_quantity_partial,
            &[("o", &offered.to_string()), ("r", &requested.to_string())],
        ),
        Reason::New => t.r_new.to_string(),
    }
}

/// The line for a `?notice=` after a change.
pub fn notice(t: &Catalogue, key: &str) -> Option<&'static str> {
    Some(match key {
        "posted" => t.n_posted,
        "updated" => t.n_updated,
        "fulfilled" => t.n_fulfilled,
        "withdrawn" => t.n_withdrawn,
        "promised" => t.n_promised,
        "blocked" => t.n_blocked,
        "joined" => t.n_joined,
        "alert_added" => t.n_alert_added,
        "alert_removed" => t.n_alert_removed,
        "sent" => t.n_sent,
        _ => return None,
    })
}

macro_rules! catalogue {
    ($($key:ident: $en:expr, $es:expr;)*) => {
        /// The words of one language; one field per string.
        #[allow(missing_docs)]
        pub struct Catalogue { $(pub $key: &'static str,)* }
        /// English.
        pub const EN: Catalogue = Catalogue { $($key: $en,)* };
        /// Spanish.
        pub const ES: Catalogue = Catalogue { $($key: $es,)* };
    };
}

catalogue! {
    skip_to_content: "Skip to content", "Saltar al contenido";
    nav_label: "Main", "Principal";
    nav_board: "Board", "Tablón";
    nav_new: "New post", "Publicar";
    nav_mine: "My posts", "Mis publicaciones";
    nav_alerts: "Alerts", "Alertas";
    nav_circles: "Circles", "Círculos";
    nav_status: "Status", "Estado";
    language: "Language", "Idioma";
    logout: "Log out", "Cerrar sesión";
    live_on: "Live", "En directo";
    live_connecting: "Connecting…", "Conectando…";
    live_offline: "Offline", "Sin conexión";
    live_missed: "Some updates were missed. Reload the page.", "Se perdieron algunas novedades. Recarga la página.";
    live_too_many: "Too many pages are open with live updates; close some and reload.", "Hay demasiadas páginas abiertas con novedades en directo; cierra alguna y recarga.";
    geo_denied: "Your location is not available. Type an area code instead.", "Tu ubicación no está disponible. Escribe un código de zona.";
    geo_shared: "Shared: only the area {place} (about 5 km across), never your exact position.", "Se comparte solo la zona {place} (unos 5 km), nunca tu posición exacta.";
    not_found_title: "Nothing here", "Aquí no hay nada";
    refused_title: "Not done", "No se ha hecho";
    refused_forged: "This change did not come from this node's own page, so it was refused. Go back, reload the page and try again.", "Este cambio no venía de la página de este nodo y se ha rechazado. Vuelve atrás, recarga la página e inténtalo de nuevo.";
    refused_too_large: "That was too much text to send at once.", "Era demasiado texto para enviarlo de una vez.";
    store_over_live: "You already have {n} open posts in {circle}, the most any node keeps. Mark one done or withdraw it first.", "Ya tienes {n} publicaciones abiertas en {circle}, lo máximo que guarda un nodo. Marca una como hecha o retírala antes.";
    store_over_total: "You already have {n} posts in {circle}, the most any node keeps. Older ones must expire first.", "Ya tienes {n} publicaciones en {circle}, lo máximo que guarda un nodo. Tienen que caducar las más antiguas.";
    store_circle_full: "The circle {circle} is full on this node. Try again when older posts expire.", "El círculo {circle} está lleno en este nodo. Inténtalo de nuevo cuando caduquen publicaciones antiguas.";
    store_not_member: "You are not a member of the closed circle {circle}. Ask one of its moderators for an invite.", "No eres miembro del círculo cerrado {circle}. Pide una invitación a quien lo modera.";
    store_newcomers: "Too many new people are posting in {circle} right now. Try again in a minute.", "Demasiadas personas nuevas publican ahora en {circle}. Inténtalo de nuevo en un minuto.";
    store_moderated: "A moderator this node follows has hidden or blocked this.", "Alguien que modera y que este nodo sigue lo ha ocultado o bloqueado.";
    store_disk_full: "The disk of this node is full, so nothing was saved. Free some space and try again.", "El disco de este nodo está lleno y no se ha guardado nada. Libera espacio e inténtalo de nuevo.";
    login_title: "Log in", "Entrar";
    login_needed: "You are not logged in, so this page shows nothing.", "No has entrado, así que esta página no muestra nada.";
    login_how: "On the computer where your node runs, type:", "En el ordenador donde funciona tu nodo, escribe:";
    login_how_after: "It prints a one-time link (and opens it where there is a desktop). Open that link in this browser.", "Muestra un enlace de un solo uso (y lo abre si hay escritorio). Abre ese enlace en este navegador.";
    login_bad_code: "This login link was already used or has expired.", "Este enlace ya se usó o ha caducado.";
    unavailable_title: "The node is not answering", "El nodo no responde";
    unavailable_text: "The node is not answering right now (is it shutting down?). Try again in a moment.", "El nodo no responde ahora mismo (¿se está apagando?). Inténtalo de nuevo en un momento.";
    board_title: "Board", "Tablón";
    board_lead: "Offers and requests in your circles, newest first.", "Ofertas y peticiones de tus círculos, las más nuevas primero.";
    filters: "Filters", "Filtros";
    filter_kind: "Show", "Mostrar";
    filter_tag: "Tag", "Etiqueta";
    filter_words: "Words", "Palabras";
    filter_near: "Near (area code)", "Cerca de (código de zona)";
    filter_near_hint: "A geohash such as u33dc; “Use my location” fills it in.", "Un geohash como u33dc; «Usar mi ubicación» lo rellena.";
    filter_within: "Within", "A menos de";
    its_cell: "that area", "esa zona";
    n_km: "{n} km", "{n} km";
    use_my_location: "Use my location", "Usar mi ubicación";
    any: "Any", "Cualquiera";
    all_my_circles: "All my circles", "Todos mis círculos";
    show: "Show", "Mostrar";
    clear_filters: "Clear filters", "Quitar filtros";
    newest_first: "Newest first", "Más nuevas primero";
    board_empty: "Nothing here yet.", "Todavía no hay nada.";
    board_empty_new: "Post an offer or a request.", "Publica una oferta o una petición.";
    pages: "Pages", "Páginas";
    newer: "Newer", "Más nuevas";
    older: "Older", "Más antiguas";
    bad_choice: "Not one of the choices.", "No es una de las opciones.";
    offer: "Offer", "Oferta";
    request: "Request", "Petición";
    offers: "Offers", "Ofertas";
    requests: "Requests", "Peticiones";
    cat_food: "Food", "Comida";
    cat_housing: "Housing", "Vivienda";
    cat_transport: "Transport", "Transporte";
    cat_goods: "Goods", "Cosas";
    cat_skills: "Skills", "Habilidades";
    cat_care: "Care", "Cuidados";
    cat_money: "Money", "Dinero";
    cat_other: "Other", "Otros";
    status_open: "Open", "Abierta";
    status_fulfilled: "Fulfilled", "Cumplida";
    status_withdrawn: "Withdrawn", "Retirada";
    status_promised: "Promised", "Prometida";
    status_other: "Other status", "Otro estado";
    near_place: "near {place}", "cerca de {place}";
    quantity_n: "×{n}", "×{n}";
    you: "you", "tú";
    posts_near_here: "Posts near here", "Publicaciones cerca";
    contact: "Contact", "Contacto";
    author: "Author", "Autor";
    posted: "Posted", "Publicada";
    updated: "Updated", "Actualizada";
    edit: "Edit", "Editar";
    matches_title: "Matches", "Coincidencias";
    matches_none: "No matching posts yet.", "Todavía no hay publicaciones que encajen.";
    why: "Why", "Por qué";
    your_other_posts: "Your other posts", "Tus otras publicaciones";
    authors_other_posts: "The author's other posts", "Otras publicaciones de esta persona";
    block_title: "Block this author", "Bloquear a esta persona";
    block_explain: "Their posts are removed from this node and no new ones are kept. Others still see them.", "Sus publicaciones se borran de este nodo y no se guardan nuevas. Los demás las siguen viendo.";
    block_button: "Block author", "Bloquear";
    post_missing: "No such post", "Esa publicación no existe";
    new_title: "New post", "Nueva publicación";
    edit_title: "Edit post", "Editar publicación";
    kind_legend: "This is", "Esto es";
    kind_offer_explain: "An offer: something I can give", "Una oferta: algo que puedo dar";
    kind_request_explain: "A request: something I need", "Una petición: algo que necesito";
    kind_required: "Choose offer or request.", "Elige oferta o petición.";
    field_title: "Title", "Título";
    field_description: "Description", "Descripción";
    field_category: "Category", "Categoría";
    field_tags: "Tags", "Etiquetas";
    field_location: "Location", "Ubicación";
    field_quantity: "Quantity", "Cantidad";
    field_expires: "Expires", "Caduca";
    field_circle: "Circle", "Círculo";
    tags_hint: "Up to 8 words such as bike, winter-coats; separated by commas.", "Hasta 8 palabras como bici, abrigos; separadas por comas.";
    location_hint: "Optional. What is shared with your circle is only this area code (a geohash: 5 characters ≈ 5 km, 6 ≈ 1 km), never your exact position. Leave it empty to share no place.", "Opcional. Con tu círculo solo se comparte este código de zona (un geohash: 5 caracteres ≈ 5 km, 6 ≈ 1 km), nunca tu posición exacta. Déjalo vacío para no compartir ningún lugar.";
    quantity_whole_number: "Must be a whole number, such as 3.", "Debe ser un número entero, como 3.";
    keep_expiry: "Keep as it is", "Dejar como está";
    in_one_day: "in 1 day", "en 1 día";
    in_one_week: "in 1 week", "en 1 semana";
    in_two_weeks: "in 2 weeks", "en 2 semanas";
    in_n_days: "in {n} days", "en {n} días";
    post_button: "Post", "Publicar";
    save_button: "Save", "Guardar";
    form_has_errors: "Nothing was posted: please fix the fields marked below.", "No se ha publicado nada: corrige los campos marcados.";
    p_empty: "This cannot be empty.", "No puede estar vacío.";
    p_too_long: "Too long: {len}, at most {max}.", "Demasiado largo: {len}, como mucho {max}.";
    p_too_many: "Too many: {len}, at most {max}.", "Demasiados: {len}, como mucho {max}.";
    p_bad_char: "The character “{c}” is not allowed here.", "El carácter «{c}» no se permite aquí.";
    p_duplicate: "“{v}” appears twice.", "«{v}» aparece dos veces.";
    r_category: "same category ({c})", "misma categoría ({c})";
    r_tags: "{n} shared tags", "{n} etiquetas en común";
    r_under_km: "less than 1 km away", "a menos de 1 km";
    r_km: "about {n} km away", "a unos {n} km";
    r_anywhere: "no place given", "sin lugar";
    r_words: "{n} shared words", "{n} palabras en común";
    r_quantity_fits: "the quantity fits", "la cantidad encaja";
    r_quantity_partial: "{o} of {r} wanted", "{o} de {r} pedidos";
    r_new: "new", "nueva";
    mine_title: "My posts", "Mis publicaciones";
    mine_empty: "You have not posted anything yet.", "Todavía no has publicado nada.";
    fulfil_button: "Mark fulfilled", "Marcar como cumplida";
    withdraw_button: "Withdraw", "Retirar";
    alerts_title: "Alerts", "Alertas";
    alerts_lead: "An alert watches every arriving post and tells you when one fits.", "Una alerta vigila cada publicación que llega y te avisa cuando una encaja.";
    live_matches: "Arriving now", "Llegando ahora";
    live_matches_none: "Matching posts appear here as they arrive.", "Las publicaciones que encajen aparecerán aquí al llegar.";
    your_alerts: "Your alerts", "Tus alertas";
    alerts_empty: "You have no alerts yet.", "Todavía no tienes alertas.";
    alert_nothing_yet: "Nothing fits this alert yet.", "Todavía nada encaja con esta alerta.";
    remove: "Remove", "Quitar";
    remove_alert_named: "Remove alert {alert}", "Quitar la alerta {alert}";
    add_alert: "Add an alert", "Añadir una alerta";
    add_alert_button: "Add alert", "Añadir alerta";
    alert_empty_filter: "Choose at least one thing for the alert to look for.", "Elige al menos una cosa que buscar.";
    fits_alert: "Fits your alert: {alert}", "Encaja con tu alerta: {alert}";
    fits_your_post: "Matches your post “{title}”", "Encaja con tu publicación «{title}»";
    circles_title: "Circles", "Círculos";
    circles_lead: "A circle is a group that shares posts: neighbours, a building, a school.", "Un círculo es un grupo que comparte publicaciones: vecinos, un edificio, una escuela.";
    joined_circles: "Your circles", "Tus círculos";
    make_invite: "invite someone", "invitar a alguien";
    join_title: "Join a circle", "Unirse a un círculo";
    invite_code: "Invite code", "Código de invitación";
    invite_code_hint: "Paste the code someone gave you (it starts with AIDMESH1-).", "Pega el código que te dieron (empieza por AIDMESH1-).";
    invite_bad: "This is not a valid invite code.", "No es un código de invitación válido.";
    join_button: "Join", "Unirse";
    invite_title: "Invite to {circle}", "Invitar a {circle}";
    invite_lead: "Give this code to someone, or let them scan it with their phone. It holds the circle's name and how to reach this node.", "Da este código a alguien o deja que lo escanee con su teléfono. Contiene el nombre del círculo y cómo llegar a este nodo.";
    qr_label: "QR code of the invite to {circle}", "Código QR de la invitación a {circle}";
    status_title: "Status", "Estado";
    reach_direct: "Others can reach you directly.", "Los demás pueden llegar a ti directamente.";
    reach_relay: "Others can reach you through a relay.", "Los demás pueden llegar a ti a través de un relé.";
    reach_not_yet: "Others cannot reach you from outside yet.", "Los demás todavía no pueden llegar a ti desde fuera.";
    reach_not_yet_hint: "You can still post and read: your node connects out to its peers, and they pass your posts on.", "Aun así puedes publicar y leer: tu nodo se conecta a otros y ellos reparten tus publicaciones.";
    peers_connected: "Connected to {n} peers ({direct} directly, {relayed} through a relay).", "Conectado a {n} nodos ({direct} directamente, {relayed} a través de un relé).";
    last_seen: "Your posts were last seen by a peer", "Un nodo vio tus publicaciones por última vez";
    never_seen: "No peer has confirmed having your posts yet.", "Ningún nodo ha confirmado todavía que tiene tus publicaciones.";
    posts_stored: "{n} posts stored on this node.", "{n} publicaciones guardadas en este nodo.";
    peers_connected_one: "Connected to 1 peer ({direct} directly, {relayed} through a relay).", "Conectado a 1 nodo ({direct} directamente, {relayed} a través de un relé).";
    posts_stored_one: "1 post stored on this node.", "1 publicación guardada en este nodo.";
    relay_server: "This node relays for others.", "Este nodo hace de relé para otros.";
    peers_title: "Peers", "Nodos";
    peer: "Peer", "Nodo";
    connection: "Connection", "Conexión";
    since: "Since", "Desde";
    via_relay: "through a relay", "a través de un relé";
    direct: "direct", "directa";
    details: "Details", "Detalles";
    your_peer_id: "Your peer id", "Tu identificador";
    version: "Version", "Versión";
    traffic: "Traffic", "Tráfico";
    traffic_n: "{sent} sent, {received} received", "{sent} enviados, {received} recibidos";
    direct_address: "Direct address", "Dirección directa";
    relayed_address: "Relayed address", "Dirección por relé";
    n_posted: "Posted. Your circle will see it in a few seconds.", "Publicado. Tu círculo lo verá en unos segundos.";
    n_updated: "Saved.", "Guardado.";
    n_fulfilled: "Marked fulfilled. Thank you!", "Marcada como cumplida. ¡Gracias!";
    n_withdrawn: "Withdrawn.", "Retirada.";
    n_promised: "Promised.", "Prometida.";
    n_blocked: "Blocked. Their posts are gone from this node.", "Bloqueado. Sus publicaciones ya no están en este nodo.";
    n_joined: "Joined. Posts of the circle arrive as its peers connect.", "Te has unido. Las publicaciones llegarán cuando se conecten sus nodos.";
    n_alert_added: "Alert added.", "Alerta añadida.";
    n_alert_removed: "Alert removed.", "Alerta quitada.";
    n_sent: "Sent.", "Enviado.";
    nav_inbox: "Inbox", "Mensajes";
    inbox_title: "Inbox", "Mensajes";
    inbox_lead: "Private conversations about posts. Only you and the other person can read them.", "Conversaciones privadas sobre publicaciones. Solo tú y la otra persona podéis leerlas.";
    conversations: "Conversations", "Conversaciones";
    inbox_empty: "No conversations yet. Open a post and reply privately to start one.", "Todavía no hay conversaciones. Abre una publicación y responde en privado para empezar una.";
    message_requests: "Message requests", "Solicitudes de mensaje";
    message_requests_hint: "From people you have not talked with yet.", "De personas con las que aún no has hablado.";
    n_unread: "{n} new", "{n} nuevos";
    role_author: "about your post", "sobre tu publicación";
    role_asker: "you asked", "preguntaste tú";
    conversation_with: "Conversation with {peer}", "Conversación con {peer}";
    them: "them", "la otra persona";
    message_label: "Message", "Mensaje";
    send_button: "Send", "Enviar";
    reply_privately: "Reply privately", "Responder en privado";
    reply_hint: "Only the author will see this.", "Solo lo verá quien publicó.";
    send_privately: "Send privately", "Enviar en privado";
    handover: "Handover", "Entrega";
    promise_button: "Promise it to this person", "Prometérselo a esta persona";
    done_button: "Mark handed over", "Marcar como entregado";
    decline_button: "Call it off", "Cancelar";
    msg_promise: "Promised it to you.", "Te lo ha prometido.";
    msg_decline: "Called it off.", "Lo ha cancelado.";
    msg_done: "Handed over: the post is fulfilled.", "Entregado: la publicación está cumplida.";
    msg_promised_elsewhere: "The author promised this to someone else.", "Quien publicó se lo ha prometido a otra persona.";
    st_queued: "waiting to be sent", "esperando para enviarse";
    st_sent: "sent", "enviado";
    st_delivered: "delivered", "entregado";
    st_read: "read", "leído";
    st_expired: "expired before delivery", "caducó sin entregarse";
    st_unread: "new", "nuevo";
    st_seen: "seen", "visto";
    e_own_post: "This is your own post: people reply to you, and you answer in their conversation.", "Es tu propia publicación: la gente te responde y tú contestas en su conversación.";
    e_not_live: "This post is closed; it cannot be replied to.", "Esta publicación está cerrada; no se puede responder.";
    e_blocked: "You blocked this person; unblock them to write to them.", "Has bloqueado a esta persona; desbloquéala para escribirle.";
    e_text: "Write a message (at most 2000 characters).", "Escribe un mensaje (como mucho 2000 caracteres).";
    conversations_about: "Conversations about it", "Conversaciones sobre ella";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_said_in_the_page_language() {
        use crate::store::{Error, Refused};
        let quota = Error::Refused(Refused::OverQuota {
            circle: "riverside".into(),
            live: true,
        });
        let es = refusal(&ES, &quota).unwrap();
        assert!(
            es.contains("Ya tienes 100") && es.contains("riverside"),
            "{es}"
        );
        let en = refusal(&EN, &quota).unwrap();
        assert!(
            en.contains("You already have 100 open posts in riverside"),
            "{en}"
        );
        let full = refusal(&ES, &Error::DiskFull("no space".into())).unwrap();
        assert!(full.contains("disco"), "{full}");
        assert!(refusal(&EN, &Error::Corrupt("x".into())).is_none());
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            from_accept_language("es-AR,es;q=0.9,en;q=0.8"),
            Some(Lang::Es)
        );
        assert_eq!(
            from_accept_language("fr-FR,fr;q=0.9,en;q=0.5,es;q=0.7"),
            Some(Lang::Es)
        );
        assert_eq!(from_accept_language("de"), None);
        assert_eq!(from_accept_language("es;q=0"), None);
    }

    #[test]
    fn the_query_beats_the_cookie_beats_the_header() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, "es".parse().unwrap());
        let jar = Jar::default();
        assert_eq!(choose(&"/".parse().unwrap(), &jar, &h), Lang::Es);
        assert_eq!(choose(&"/?lang=en".parse().unwrap(), &jar, &h), Lang::En);
        h.insert(header::COOKIE, "aidmesh_lang=en".parse().unwrap());
        let jar = Jar::from_headers(&h);
        assert_eq!(choose(&"/".parse().unwrap(), &jar, &h), Lang::En);
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill(EN.in_n_days, &[("n", "3")]), "in 3 days");
        assert_eq!(
            fill(ES.invite_title, &[("circle", "barrio")]),
            "Invitar a barrio"
        );
    }
}
