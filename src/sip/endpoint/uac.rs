//! Requests we send inside a dialog (BYE, REFER) and their responses: the
//! UAC side of non-INVITE client transactions (RFC 3261 §12.2.1, §17.1.2).

use std::time::Instant;

use super::super::call::CallHandle;
use super::super::message::{build_request, IncomingResponse, Method, RequestParts};
use super::super::timer::{Timer, TimerTable, T1, T4, TIMEOUT_64_T1};
use super::super::transaction::{
    ClientPurpose, ClientState, ClientTransaction, BRANCH_MAGIC_COOKIE,
};
use super::{contact_for, EndCause, Endpoint, EndpointError, Event, TimerOwner, MAX_FORWARDS};

impl Endpoint {
    /// Sends BYE or REFER in the call's dialog as a new non-INVITE client transaction.
    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        call: CallHandle,
        purpose: ClientPurpose,
        extra_headers: Vec<(&'static str, String)>,
    ) -> Result<(), EndpointError> {
        let branch = format!("{BRANCH_MAGIC_COOKIE}{}", self.random_token());
        let user_agent = self.config.user_agent.clone();
        let entry = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall { call })?;
        let contact = contact_for(entry.route, entry.secure);
        let route = entry.route;

        // NOTE: requests go to the address, transport and (while open)
        // connection the INVITE came from. They do not follow the route set
        // or the remote target resolved by RFC 3263, because the IVR sits
        // behind a trusted SBC or PBX that expects them there. A strict
        // route (no ;lr) is sent as if it were loose.
        let cseq = entry.local_cseq + 1;
        let mut headers: Vec<(&'static str, String)> =
            vec![("Max-Forwards", MAX_FORWARDS.to_string())];
        for route in &entry.route_set {
            headers.push(("Route", route.clone()));
        }
        headers.push(("From", entry.local_uri.clone()));
        headers.push(("To", entry.remote_uri.clone()));
        headers.push(("Call-ID", entry.call_id.clone()));
        headers.push(("CSeq", format!("{cseq} {}", purpose.method_name())));
        headers.push(("Contact", contact));
        headers.extend(extra_headers);
        headers.push(("User-Agent", user_agent));

        let method = match purpose {
            ClientPurpose::Bye => Method::Bye,
            ClientPurpose::Refer => Method::Refer,
        };
        let request = build_request(RequestParts {
            method,
            request_uri: &entry.remote_target,
            via: format!(
                "SIP/2.0/{} {};branch={branch};rport",
                route.transport.via_token(),
                route.local
            ),
            headers,
        })
        .map_err(|_| EndpointError::InvalidRemoteTarget { call })?;
        entry.local_cseq = cseq;
        let call_id = entry.call_id.clone();

        self.send(route, request.clone());
        // RFC 3261 §17.1.2.2: Timer E retransmits only over unreliable transports.
        let mut timers = TimerTable::default();
        let owner = TimerOwner::Client(branch.clone());
        if !route.transport.is_stream() {
            self.timer_index
                .arm(&mut timers, owner.clone(), Timer::E, now + T1);
        }
        self.timer_index
            .arm(&mut timers, owner, Timer::F, now + TIMEOUT_64_T1);
        self.client_transactions.insert(
            branch,
            ClientTransaction {
                call,
                call_id,
                purpose,
                request,
                route,
                state: ClientState::Trying,
                retransmit_interval: T1,
                timers,
            },
        );
        Ok(())
    }

    pub(super) fn handle_response(&mut self, now: Instant, response: IncomingResponse) {
        let Some(branch) = response.branch else {
            return;
        };
        let Some(transaction) = self.client_transactions.get_mut(&branch) else {
            tracing::debug!(
                status = response.status,
                "dropped response that matches no transaction"
            );
            return;
        };
        if transaction.purpose.method_name() != response.cseq_method {
            return;
        }

        if response.status < 200 {
            if transaction.state == ClientState::Trying {
                transaction.state = ClientState::Proceeding;
            }
            return;
        }
        if transaction.state == ClientState::Completed {
            return;
        }

        transaction.state = ClientState::Completed;
        transaction.timers = TimerTable::default();
        self.timer_index.arm(
            &mut transaction.timers,
            TimerOwner::Client(branch),
            Timer::K,
            now + T4,
        );
        let (call, purpose) = (transaction.call, transaction.purpose);
        self.finish_client_transaction(now, call, purpose, response.status);
    }

    /// Reports the outcome of a BYE or REFER: a final status, or 408 on Timer F.
    pub(super) fn finish_client_transaction(
        &mut self,
        now: Instant,
        call: CallHandle,
        purpose: ClientPurpose,
        status: u16,
    ) {
        if !self.calls.contains_key(&call) {
            return;
        }
        match purpose {
            ClientPurpose::Bye => self.end_call(now, call, EndCause::HungUp),
            ClientPurpose::Refer if (200..300).contains(&status) => {
                self.emit(Event::TransferAccepted { call });
            }
            ClientPurpose::Refer => {
                if let Some(entry) = self.calls.get(&call) {
                    tracing::info!(call_id = %entry.call_id, status, "REFER rejected");
                }
                self.emit(Event::TransferRejected { call, status });
            }
        }
    }
}
