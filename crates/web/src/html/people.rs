//! Clients (quota, platforms) and users (role, client), with their forms.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use engine::acting::{ClientInput, LinkDelivery, UserInput};
use model::{Action, Role};
use serde::Deserialize;

use super::{Ctx, FormErrors, NoFields, PageResult, page, page_with_status, see};
use crate::AppState;
use crate::session::{Posted, Viewer};
use crate::views::{ClientView, Names, UserView};

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage {
    ctx: Ctx,
    clients: Vec<ClientView>,
    can_manage: bool,
}

async fn clients(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let actor = viewer.actor();
    let clients = state
        .run(move |f| {
            let a = f.acting(actor);
            let clients = a.clients()?;
            let names = Names::load(&a, None)?;
            Ok(clients.iter().map(|c| ClientView::new(&names, c)).collect())
        })
        .await?;
    page(ClientsPage {
        ctx: Ctx::new(&viewer, "clients"),
        clients,
        can_manage: viewer.actor().may(Action::ManageClients),
    })
}

#[derive(Template)]
#[template(path = "client_form.html")]
struct ClientFormPage {
    ctx: Ctx,
    /// None: a new client.
    existing: Option<String>,
    form: ClientForm,
    platforms: Vec<String>,
    users: Vec<UserView>,
    can_manage: bool,
    errors: FormErrors,
}

#[derive(Deserialize, Default, Clone)]
struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    quota: String,
    /// Platform names, comma separated (a form's checkboxes arrive as repeated fields, which
    /// the form reader does not take; the page's checkboxes are named `platform_<name>`).
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

impl ClientForm {
    fn chosen_platforms(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rest
            .keys()
            .filter_map(|k| k.strip_prefix("platform_"))
            .map(str::to_string)
            .collect();
        out.sort();
        out
    }

    fn has_platform(&self, name: &str) -> bool {
        self.rest.contains_key(&format!("platform_{name}"))
    }
}

async fn client_form(
    state: &AppState,
    viewer: &Viewer,
    existing: Option<String>,
    form: Option<ClientForm>,
    errors: FormErrors,
) -> PageResult {
    let actor = viewer.actor();
    let name = existing.clone();
    let (form_loaded, platforms, users) = state
        .run(move |f| {
            let a = f.acting(actor);
            let names = Names::load(&a, None)?;
            let platforms: Vec<String> =
                a.platforms()?.iter().map(|p| p.name.to_string()).collect();
            let Some(name) = name else {
                return Ok((ClientForm::default(), platforms, vec![]));
            };
            let c = a.client(&name)?;
            let view = ClientView::new(&names, &c);
            let mut rest = std::collections::HashMap::new();
            for p in &view.platforms {
                rest.insert(format!("platform_{p}"), "on".to_string());
            }
            let users = if a.may(Action::ViewUsers) {
                let names = Names::load(&a, Some(c.client.id))?;
                a.users()?
                    .iter()
                    .filter(|u| u.client_id == Some(c.client.id))
                    .map(|u| UserView::new(&names, u))
                    .collect()
            } else {
                vec![]
            };
            Ok((
                ClientForm {
                    name: view.name,
                    email: view.email.unwrap_or_default(),
                    quota: view.site_quota.map(|q| q.to_string()).unwrap_or_default(),
                    rest,
                },
                platforms,
                users,
            ))
        })
        .await?;
    let status = errors.status();
    page_with_status(
        status,
        ClientFormPage {
            ctx: Ctx::new(viewer, "clients"),
            existing,
            form: form.unwrap_or(form_loaded),
            platforms,
            users,
            can_manage: viewer.actor().may(Action::ManageClients),
            errors,
        },
    )
}

async fn new_client(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    client_form(&state, &viewer, None, None, FormErrors::default()).await
}

async fn show_client(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    client_form(&state, &viewer, Some(name), None, FormErrors::default()).await
}

fn parse_quota(quota: &str) -> Result<Option<u32>, engine::Error> {
    match quota.trim() {
        "" | "0" => Ok(None),
        q => q.parse::<u32>().map(Some).map_err(|_| {
            model::Invalid::new(
                "quota",
                q,
                "must be a whole number of sites, or empty for none",
            )
            .into()
        }),
    }
}

async fn save_client(
    state: AppState,
    viewer: Viewer,
    existing: Option<String>,
    form: ClientForm,
) -> PageResult {
    let actor = viewer.actor();
    let update = existing.is_some();
    let input_form = form.clone();
    let name = existing
        .clone()
        .unwrap_or_else(|| form.name.trim().to_string());
    let result = state
        .run(move |f| {
            let input = ClientInput {
                name,
                email: Some(input_form.email.trim().to_string()).filter(|e| !e.is_empty()),
                site_quota: parse_quota(&input_form.quota)?,
                platforms: input_form.chosen_platforms(),
            };
            f.acting(actor).save_client(&input, update)
        })
        .await;
    match result {
        Ok(c) => see(&format!("/clients/{}", c.client.name)),
        Err(e) if super::is_form_error(&e) => {
            client_form(&state, &viewer, existing, Some(form), FormErrors::from(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn create_client(State(state): State<AppState>, posted: Posted<ClientForm>) -> PageResult {
    save_client(state, posted.viewer, None, posted.form).await
}

async fn update_client(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<ClientForm>,
) -> PageResult {
    save_client(state, posted.viewer, Some(name), posted.form).await
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: Ctx,
    users: Vec<UserView>,
    can_manage: bool,
}

async fn users(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let actor = viewer.actor();
    let users = state
        .run(move |f| {
            let a = f.acting(actor);
            let users = a.users()?;
            let names = Names::load(&a, users.iter().filter_map(|u| u.client_id))?;
            Ok(users.iter().map(|u| UserView::new(&names, u)).collect())
        })
        .await?;
    page(UsersPage {
        ctx: Ctx::new(&viewer, "users"),
        users,
        can_manage: viewer.actor().may(Action::ManageUsers),
    })
}

#[derive(Template)]
#[template(path = "user_form.html")]
struct UserFormPage {
    ctx: Ctx,
    existing: Option<String>,
    form: UserForm,
    roles: Vec<(&'static str, &'static str)>,
    clients: Vec<String>,
    errors: FormErrors,
    /// A login link just made for the user, shown to an administrator.
    link: Option<String>,
    /// Where a login link went instead, or why none was made.
    link_note: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    disabled: Option<String>,
}

async fn user_form(
    state: &AppState,
    viewer: &Viewer,
    existing: Option<String>,
    form: Option<UserForm>,
    errors: FormErrors,
    delivery: Option<LinkDelivery>,
) -> PageResult {
    let actor = viewer.actor();
    let name = existing.clone();
    let (loaded, clients) = state
        .run(move |f| {
            let a = f.acting(actor);
            let clients = a
                .clients()
                .map(|cs| cs.iter().map(|c| c.client.name.to_string()).collect())
                .unwrap_or_default();
            let Some(name) = name else {
                return Ok((
                    UserForm {
                        role: "client".into(),
                        ..UserForm::default()
                    },
                    clients,
                ));
            };
            let u = a.user(&name)?;
            let names = Names::load(&a, u.client_id)?;
            let v = UserView::new(&names, &u);
            Ok((
                UserForm {
                    name: v.name,
                    email: v.email.unwrap_or_default(),
                    role: v.role,
                    client: v.client.unwrap_or_default(),
                    disabled: v.disabled.then(|| "on".into()),
                },
                clients,
            ))
        })
        .await?;
    let status = errors.status();
    page_with_status(
        status,
        UserFormPage {
            ctx: Ctx::new(viewer, "users"),
            existing,
            form: form.unwrap_or(loaded),
            roles: Role::ALL.iter().map(|r| (r.as_str(), r.title())).collect(),
            clients,
            errors,
            link: match &delivery {
                Some(LinkDelivery::Shown(url)) => Some(url.clone()),
                _ => None,
            },
            link_note: match delivery {
                Some(LinkDelivery::Mailed(to)) => Some(format!(
                    "A login link was mailed to {to}; it works once, for a day."
                )),
                Some(LinkDelivery::Withheld(why)) => Some(why),
                _ => None,
            },
        },
    )
}

async fn new_user(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    user_form(&state, &viewer, None, None, FormErrors::default(), None).await
}

async fn show_user(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    user_form(
        &state,
        &viewer,
        Some(name),
        None,
        FormErrors::default(),
        None,
    )
    .await
}

fn user_input(form: &UserForm, name: String) -> UserInput {
    UserInput {
        name,
        email: Some(form.email.trim().to_string()).filter(|e| !e.is_empty()),
        role: form.role.clone(),
        client: Some(form.client.clone()).filter(|c| !c.is_empty()),
        password: None,
    }
}

async fn create_user(State(state): State<AppState>, posted: Posted<UserForm>) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    let input = user_input(&form, form.name.trim().to_string());
    let result = state
        .run(move |f| {
            let a = f.acting(actor);
            let user = a.add_user(&input)?;
            let delivery = a.send_login_link(user.name.as_str())?;
            Ok((user, delivery))
        })
        .await;
    match result {
        Ok((user, link)) => {
            user_form(
                &state,
                &viewer,
                Some(user.name.to_string()),
                None,
                FormErrors::default(),
                Some(link),
            )
            .await
        }
        Err(e) if super::is_form_error(&e) => {
            user_form(
                &state,
                &viewer,
                None,
                Some(form),
                FormErrors::from(&e),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn update_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<UserForm>,
) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    let input = user_input(&form, name.clone());
    let disabled = form.disabled.is_some();
    let target = name.clone();
    let result = state
        .run(move |f| f.acting(actor).update_user(&target, &input, disabled))
        .await;
    match result {
        Ok(u) => see(&format!("/users/{}", u.name)),
        Err(e) if super::is_form_error(&e) => {
            user_form(
                &state,
                &viewer,
                Some(name),
                Some(form),
                FormErrors::from(&e),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn user_link(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let viewer = posted.viewer;
    let actor = viewer.actor();
    let target = name.clone();
    let link = state
        .run(move |f| f.acting(actor).send_login_link(&target))
        .await?;
    user_form(
        &state,
        &viewer,
        Some(name),
        None,
        FormErrors::default(),
        Some(link),
    )
    .await
}

async fn delete_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    state
        .run(move |f| f.acting(actor).delete_user(&name))
        .await?;
    see("/users")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clients", get(clients).post(create_client))
        .route("/clients/new", get(new_client))
        .route("/clients/{name}", get(show_client).post(update_client))
        .route("/users", get(users).post(create_user))
        .route("/users/new", get(new_user))
        .route("/users/{name}", get(show_user).post(update_user))
        .route("/users/{name}/link", post(user_link))
        .route("/users/{name}/delete", post(delete_user))
}
