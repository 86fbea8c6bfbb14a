//! bcrypt on a blocking thread: one hash costs ~60 ms at cost 10 and would stall every task sharing the
//! runtime thread (STACK: eight inline verifies stalled a 10 ms ticker by 940 ms).

use super::error::ServiceError;
use super::validate::Password;

/// The cost for production (OWASP's minimum); tests pass a lower one through the options.
pub const DEFAULT_COST: u32 = 10;

/// Hashes `password` with a fresh salt.
pub async fn hash(password: Password, cost: u32) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password.expose(), cost))
        .await
        .map_err(|error| ServiceError::Internal(format!("password hashing task failed: {error}")))?
        .map_err(|error| ServiceError::Internal(format!("password hashing failed: {error}")))
}

/// Whether `password` matches `hash` (from [`super::Outcome::Credentials`]). A malformed hash counts as
/// no match rather than an error: the caller answers 401 either way.
pub async fn verify(password: String, hash: String) -> Result<bool, ServiceError> {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .map_err(|error| ServiceError::Internal(format!("password check task failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let password = Password::parse("correct horse").expect("valid password");

        let hashed = hash(password, 4).await.expect("hash");

        assert!(
            verify("correct horse".into(), hashed.clone())
                .await
                .expect("verify")
        );
        assert!(!verify("wrong horse!".into(), hashed).await.expect("verify"));
        assert!(
            !verify("anything".into(), "not a hash".into())
                .await
                .expect("verify")
        );
    }
}
