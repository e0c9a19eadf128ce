//! The deadline of a request's body: a body that never finishes is answered 408 and its
//! connection closed, instead of holding the connection and its handler for ever.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web;
use futures_util::{Stream, StreamExt};

/// How long a client may take to send a request's body once its headers are in. Actix-web
/// times the headers only: without this, a body that stops short of its `Content-Length` (or
/// of its last chunk) holds the connection and the handler waiting on it for ever.
pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// A request's body, shared by the handler, which reads it through [`RequestBody::reader`],
/// and by the answer, which holds it until it is sent whole. Actix-web times the request head
/// only, so this is what bounds a body that never finishes:
/// - the reader ends with an error once [`CLIENT_BODY_TIMEOUT`] passes, and the answer is then
///   408 whatever the handler made of that error;
/// - a body still unfinished when its answer is sent makes actix-http close the connection
///   (after at most the 1 s disconnect timeout). Had the handler dropped it, actix-http would
///   instead read a chunked body to its end before the next request: for ever, if it never
///   ends, and with no timer running.
#[derive(Clone)]
pub(crate) struct RequestBody {
    payload: Rc<RefCell<Payload>>,
    late: Rc<Cell<bool>>,
}

impl RequestBody {
    pub(crate) fn new(payload: Payload) -> Self {
        Self { payload: Rc::new(RefCell::new(payload)), late: Rc::default() }
    }

    /// The body as the handler reads it: ended with an error at `deadline`.
    pub(crate) fn reader(&self, deadline: tokio::time::Instant) -> Payload {
        let body = self.clone();
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        let mut ended = false;
        let stream = futures_util::stream::poll_fn(move |cx| {
            if ended {
                return Poll::Ready(None);
            }
            // The timer first: a body trickled a byte at a time is always ready when polled.
            if timer.as_mut().poll(cx).is_ready() {
                ended = true;
                body.late.set(true);
                let late = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the request body did not arrive within {CLIENT_BODY_TIMEOUT:?}"),
                );
                return Poll::Ready(Some(Err(PayloadError::Io(late))));
            }
            let next = body.payload.borrow_mut().poll_next_unpin(cx);
            ended = matches!(next, Poll::Ready(None));
            next
        });
        let stream: Pin<Box<dyn Stream<Item = _>>> = Box::pin(stream);
        Payload::from(stream)
    }

    /// The handler's answer, or 408 if the body came too late; either holds the body.
    pub(crate) fn answer<B: MessageBody + 'static>(
        self,
        response: ServiceResponse<B>,
    ) -> ServiceResponse {
        let response = if self.late.get() {
            let mut late = actix_web::ResponseError::error_response(
                &crate::error::ApiError::BodyTimeout(CLIENT_BODY_TIMEOUT.as_secs()),
            );
            late.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
            response.into_response(late)
        } else {
            response.map_into_boxed_body()
        };
        response.map_body(|_, body| BoxBody::new(Holding { body, _request: self }))
    }
}

/// An answer's body, holding its request's body until actix-http drops it, after its end.
struct Holding {
    body: BoxBody,
    _request: RequestBody,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
