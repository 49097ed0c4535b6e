//! The resource tree drawn as a graph, left to right as Argo CD draws it: the Application, its
//! resources, then what each owns (Deployment → ReplicaSet → Pod), joined by edges.
//!
//! The layout is computed here, so the page needs no layout script: an SVG carries the edges, and
//! each node is an HTML button inside a `foreignObject` (focusable, labelled, and styled by the
//! style sheet; positions are SVG attributes, which the page's CSP allows where inline styles are
//! refused).

use maud::{Markup, html};

use super::badges;
use crate::api::tree::Node;

/// Width and height of one node's box, in CSS pixels.
const NODE_W: u32 = 250;
const NODE_H: u32 = 64;
/// Space between columns (edges run there) and between rows.
const COL_GAP: u32 = 56;
const ROW_GAP: u32 = 12;
/// Deeper ownership chains are cut here (a cycle of ownerReferences cannot loop the page).
const MAX_DEPTH: usize = 8;

/// One box of the drawing: `node` is None for the Application itself.
struct Placed<'a> {
    node: Option<&'a Node>,
    col: u32,
    /// The box's top, in pixels.
    y: u32,
    parent: Option<usize>,
}

/// Places every node: columns by depth, leaves one under another in depth-first order, and each
/// parent centred on its children.
fn layout<'a>(nodes: &'a [Node]) -> Vec<Placed<'a>> {
    let mut placed = vec![Placed {
        node: None,
        col: 0,
        y: 0,
        parent: None,
    }];
    let mut seen = std::collections::HashSet::new();
    let mut next_row = 0u32;
    let roots: Vec<&Node> = nodes.iter().filter(|n| n.sync_status.is_some()).collect();
    let mut ys = Vec::new();
    for root in roots {
        ys.push(place(
            root,
            nodes,
            1,
            0,
            &mut placed,
            &mut seen,
            &mut next_row,
        ));
    }
    placed[0].y = centre(&ys);
    placed
}

fn place<'a>(
    node: &'a Node,
    all: &'a [Node],
    col: u32,
    parent: usize,
    placed: &mut Vec<Placed<'a>>,
    seen: &mut std::collections::HashSet<&'a str>,
    next_row: &mut u32,
) -> u32 {
    let index = placed.len();
    placed.push(Placed {
        node: Some(node),
        col,
        y: 0,
        parent: Some(parent),
    });
    let children: Vec<&Node> = if node.uid.is_empty() || col as usize > MAX_DEPTH {
        Vec::new()
    } else {
        // An owned object shows once, under the first owner that reaches it.
        all.iter()
            .filter(|c| c.sync_status.is_none() && c.parent_refs.iter().any(|p| p.uid == node.uid))
            .filter(|c| c.uid.is_empty() || seen.insert(&c.uid))
            .collect()
    };
    let ys: Vec<u32> = children
        .into_iter()
        .map(|c| place(c, all, col + 1, index, placed, seen, next_row))
        .collect();
    let y = if ys.is_empty() {
        let y = *next_row * (NODE_H + ROW_GAP);
        *next_row += 1;
        y
    } else {
        centre(&ys)
    };
    placed[index].y = y;
    y
}

fn centre(ys: &[u32]) -> u32 {
    match (ys.first(), ys.last()) {
        (Some(first), Some(last)) => (first + last) / 2,
        _ => 0,
    }
}

fn x_of(col: u32) -> u32 {
    col * (NODE_W + COL_GAP)
}

/// The DOM id of the box at `index`.
fn node_id(index: usize) -> String {
    format!("tree-node-{index}")
}

/// The tree of `app_name` as an SVG graph in a scrolling frame (narrow screens scroll it rather
/// than shrink its text).
pub fn graph(app_name: &str, nodes: &[Node]) -> Markup {
    let placed = layout(nodes);
    let width = placed
        .iter()
        .map(|p| x_of(p.col) + NODE_W)
        .max()
        .unwrap_or(NODE_W);
    let height = placed.iter().map(|p| p.y + NODE_H).max().unwrap_or(NODE_H);
    html! {
        div class="tree" {
            @if placed.len() == 1 { p { "No resources yet." } }
            div class="tree-frame" tabindex="0" role="region" aria-label="Resource tree" {
                svg class="tree-graph" xmlns="http://www.w3.org/2000/svg"
                    width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
                    @for (i, p) in placed.iter().enumerate() {
                        @if let Some(parent) = p.parent.and_then(|j| placed.get(j).map(|q| (j, q))) {
                            (edge(parent, (i, p)))
                        }
                    }
                    @for (i, p) in placed.iter().enumerate() {
                        foreignObject x=(x_of(p.col)) y=(p.y) width=(NODE_W) height=(NODE_H) {
                            @match p.node {
                                None => div id=(node_id(i)) class="node app-node" {
                                    span class="kind" { "Application" }
                                    strong class="name" title=(app_name) { (app_name) }
                                },
                                Some(n) => (node_button(i, n)),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A curve from the right edge of the parent's box to the left edge of the child's.
fn edge((from, parent): (usize, &Placed<'_>), (to, child): (usize, &Placed<'_>)) -> Markup {
    let (x1, y1) = (x_of(parent.col) + NODE_W, parent.y + NODE_H / 2);
    let (x2, y2) = (x_of(child.col), child.y + NODE_H / 2);
    let mid = x1 + (x2 - x1) / 2;
    html! {
        path class="edge" data-from=(node_id(from)) data-to=(node_id(to))
            d={ "M" (x1) " " (y1) " C" (mid) " " (y1) " " (mid) " " (y2) " " (x2) " " (y2) } {}
    }
}

fn node_button(index: usize, node: &Node) -> Markup {
    let managed = node.sync_status.is_some();
    html! {
        button type="button" id=(node_id(index)) class="node" aria-pressed="false"

            data-group=(node.group) data-version=(node.version) data-kind=(node.kind)
            data-namespace=(node.namespace) data-name=(node.name) data-managed=(managed) {
            span class="kind" { (node.kind) }
            strong class="name" title=(node.name) { (node.name) }
            span class="node-status" {
                @if managed { (badges::sync(node.sync_status)) " " }
                // Kinds without a health rule (ConfigMap …) show none, as Argo CD does.
                @if let Some(h) = &node.health { (badges::health(Some(h.status))) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tree::ParentRef;
    use crate::store::application::SyncStatusCode;

    fn node(kind: &str, name: &str, uid: &str, owner: Option<&str>) -> Node {
        Node {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: "web".into(),
            name: name.into(),
            uid: uid.into(),
            resource_version: String::new(),
            created_at: String::new(),
            parent_refs: owner
                .map(|o| {
                    vec![ParentRef {
                        group: String::new(),
                        kind: String::new(),
                        namespace: "web".into(),
                        name: String::new(),
                        uid: o.into(),
                    }]
                })
                .unwrap_or_default(),
            health: None,
            sync_status: owner.is_none().then_some(SyncStatusCode::Synced),
        }
    }

    /// The edges of a drawing as (from kind, to kind), read back from the markup.
    fn edges(html: &str, nodes: &[Node]) -> Vec<(String, String)> {
        let placed = layout(nodes);
        let kind = |id: &str| {
            let i: usize = id.trim_start_matches("tree-node-").parse().expect("index");
            placed[i]
                .node
                .map_or("Application".to_owned(), |n| n.kind.clone())
        };
        html.split("<path class=\"edge\" ")
            .skip(1)
            .map(|s| {
                let attr = |name: &str| {
                    let start = s.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                    s[start..].split('"').next().expect("value").to_owned()
                };
                (kind(&attr("data-from")), kind(&attr("data-to")))
            })
            .collect()
    }

    #[test]
    fn the_app_owns_its_resources_and_each_owner_its_children_with_an_edge_each() {
        let nodes = vec![
            node("Deployment", "web", "d1", None),
            node("Service", "web", "s1", None),
            node("ReplicaSet", "web-7d9", "r1", Some("d1")),
            node("Pod", "web-7d9-a", "p1", Some("r1")),
            node("Pod", "web-7d9-b", "p2", Some("r1")),
        ];
        let html = graph("shop", &nodes).into_string();
        let mut got = edges(&html, &nodes);
        got.sort();
        let want: Vec<(String, String)> = [
            ("Application", "Deployment"),
            ("Application", "Service"),
            ("Deployment", "ReplicaSet"),
            ("ReplicaSet", "Pod"),
            ("ReplicaSet", "Pod"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        // Each node is a button a keyboard reaches, naming its kind and object.
        assert_eq!(html.matches("<button type=\"button\"").count(), 5, "{html}");
        assert!(html.contains(r#"data-kind="Pod" data-namespace="web" data-name="web-7d9-b""#));
    }

    #[test]
    fn columns_follow_depth_and_no_two_boxes_overlap() {
        let nodes = vec![
            node("Deployment", "a", "d1", None),
            node("ReplicaSet", "a-1", "r1", Some("d1")),
            node("ReplicaSet", "a-2", "r2", Some("d1")),
            node("Pod", "a-1-x", "p1", Some("r1")),
            node("Pod", "a-2-x", "p2", Some("r2")),
            node("ConfigMap", "c", "c1", None),
        ];
        let placed = layout(&nodes);
        let col = |kind: &str| {
            placed
                .iter()
                .filter(|p| p.node.map(|n| n.kind.as_str()) == Some(kind))
                .map(|p| p.col)
                .collect::<Vec<_>>()
        };
        assert_eq!(col("Deployment"), [1]);
        assert_eq!(col("ReplicaSet"), [2, 2]);
        assert_eq!(col("Pod"), [3, 3]);
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                let apart = a.col != b.col || a.y.abs_diff(b.y) >= NODE_H;
                assert!(
                    apart,
                    "boxes overlap at column {} y {} and {}",
                    a.col, a.y, b.y
                );
            }
        }
        // A parent sits between its children, so edges fan out rather than cross.
        let ys = |kind: &str| -> Vec<u32> {
            placed
                .iter()
                .filter(|p| p.node.map(|n| n.kind.as_str()) == Some(kind))
                .map(|p| p.y)
                .collect()
        };
        let (rs, dep) = (ys("ReplicaSet"), ys("Deployment")[0]);
        assert!(rs[0] <= dep && dep <= rs[1], "{rs:?} {dep}");
    }

    #[test]
    fn an_ownership_cycle_or_a_shared_child_draws_each_object_once() {
        // Two owners naming each other (a broken cluster) and a Pod with two owners.
        let mut a = node("ReplicaSet", "a", "a", Some("b"));
        a.sync_status = Some(SyncStatusCode::Synced);
        let mut b = node("ReplicaSet", "b", "b", Some("a"));
        b.sync_status = Some(SyncStatusCode::Synced);
        let mut pod = node("Pod", "p", "p", Some("a"));
        pod.parent_refs
            .extend(node("Pod", "p", "p", Some("b")).parent_refs);
        let nodes = vec![a, b, pod];
        let placed = layout(&nodes);
        let pods = placed
            .iter()
            .filter(|p| p.node.map(|n| n.kind.as_str()) == Some("Pod"))
            .count();
        assert_eq!(pods, 1);
        assert_eq!(placed.len(), 4);
    }

    #[test]
    fn an_app_with_no_resources_says_so() {
        let html = graph("empty", &[]).into_string();
        assert!(html.contains("No resources yet."), "{html}");
        assert!(!html.contains("class=\"edge\""), "{html}");
    }
}
